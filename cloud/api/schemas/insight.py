"""Schemas for the fault case library and the stored operating reports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from cloud.api.schemas.common import PublicModel, UtcTime
from cloud.api.schemas.queries import Name, PageQuery, QueryId
from cloud.domain.vocabulary import AssetKind

__all__ = [
    "CasePublic",
    "CaseQuery",
    "ReportPublic",
    "ReportQuery",
    "SimilarCasePublic",
    "SimilarCaseQuery",
]


class CaseQuery(PageQuery):
    """GET /cases: every word of `q` must match the title, cause, action, asset or mode."""

    q: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$")
    failure_mode: Name | None = None
    asset_kind: AssetKind | None = None


class SimilarCaseQuery(PageQuery):
    """GET /alerts/{id}/similar-cases."""

    limit: int = Field(5, ge=1, le=50, description="how many cases")


class CasePublic(PublicModel):
    """A closed work order with a confirmed cause: symptoms, cause, action, parts."""

    id: int
    work_order_id: int | None
    alert_id: int | None
    asset_id: str
    asset_name: str
    asset_kind: str
    failure_mode: str
    title: str
    evidence: dict[str, Any]
    diagnosis: dict[str, Any]
    signature: dict[str, float]
    cause_found: str
    action_taken: str
    parts_used: dict[str, Any]
    downtime_h: float | None
    first_time_fix: bool | None
    opened_at: UtcTime
    closed_at: UtcTime


class SimilarCasePublic(PublicModel):
    """A past case and how like the alert it is (similarity = 1 / (1 + distance))."""

    case: CasePublic
    same_failure_mode: bool
    same_asset_kind: bool
    distance: float
    similarity: float


class ReportQuery(PageQuery):
    """GET /reports."""

    kind: Literal["asset", "customer"] | None = None
    subject_id: QueryId | None = None


class ReportPublic(PublicModel):
    """A filed operating report; its bodies are at `/reports/{id}/html` and `/csv`."""

    id: int
    kind: str
    subject_id: str
    subject_name: str
    period_start: UtcTime
    period_end: UtcTime
    locale: str
    generated_at: UtcTime
    generated_by: str
