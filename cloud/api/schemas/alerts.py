"""Schemas for alerts, their history and verdicts."""

from __future__ import annotations

from typing import Any

from pydantic import Field, computed_field

from cloud.api.schemas.common import InputModel, PublicModel, UtcTime
from cloud.domain.vocabulary import Priority, VerdictKind

__all__ = [
    "AlertAction",
    "AlertCommentCreate",
    "AlertEventPublic",
    "AlertPublic",
    "AlertWorkOrderCreate",
    "VerdictCreate",
    "VerdictPublic",
]


class AlertEventPublic(PublicModel):
    """One entry of an alert's history."""

    id: int
    at: UtcTime
    kind: str
    severity: str | None
    score: float | None
    actor: str | None
    details: dict[str, Any]


class AlertPublic(PublicModel):
    """An alert as the API shows it; RUL in hours (low, median, high).

    `rul_high_h` is null with a `rul_median_h` when the upper bound (P90) lies beyond the
    model's horizon: `rul_open_ended` is then true.
    """

    id: int
    asset_id: str
    failure_mode: str
    severity: str
    state: str
    score: float
    confidence: float | None
    iso_zone: str | None
    evidence: dict[str, Any]
    model: str
    model_version: str
    rul_low_h: float | None
    rul_median_h: float | None
    rul_high_h: float | None
    opened_at: UtcTime
    last_seen_at: UtcTime
    acknowledged_at: UtcTime | None
    acknowledged_by: str | None
    resolved_at: UtcTime | None
    resolved_by: str | None
    resolution_note: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rul_open_ended(self) -> bool:
        """True when the RUL interval has a median but its upper bound is beyond horizon."""
        return self.rul_median_h is not None and self.rul_high_h is None


class AlertAction(InputModel):
    """An optional note with an acknowledge or resolve."""

    note: str = Field(default="", max_length=2000, pattern=r"^[^\x00]*$")


class VerdictCreate(InputModel):
    """An engineer's judgement on an alert."""

    verdict: VerdictKind
    note: str = Field(default="", max_length=2000, pattern=r"^[^\x00]*$")
    corrected_failure_mode: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="the failure mode found instead of the alert's, e.g. bearing_inner_race",
    )


class AlertCommentCreate(InputModel):
    """A note in the alert's history."""

    text: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*\S[^\x00]*$")


class AlertWorkOrderCreate(InputModel):
    """A work order opened by hand from an alert."""

    priority: Priority
    note: str = Field(default="", max_length=2000, pattern=r"^[^\x00]*$")


class VerdictPublic(PublicModel):
    """A recorded verdict."""

    id: int
    alert_id: int | None
    work_order_id: int | None
    asset_id: str
    failure_mode: str
    verdict: str
    corrected_failure_mode: str | None
    model: str | None
    model_version: str | None
    actor: str
    note: str
    at: UtcTime
