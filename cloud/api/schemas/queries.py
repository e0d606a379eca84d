"""Query-string models, one per list endpoint.

Each is taken with `Annotated[Model, Query()]`; `extra="forbid"` makes an unknown
parameter a 422 (`?sate=open` is a typo, and ignoring it would return everything), and
the field bounds keep every value the handlers pass on within what storage can take.
A filter given more than once means "any of" (`?state=open&state=assigned`): filters are
lists. A parameter that takes one value (a bound, a flag) given twice is a 422
(`cloud.api.errors.reject_unknown_query_params`), never silently the last one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud.api.schemas.common import ID_PATTERN, MAX_DB_INT, UtcInput
from cloud.domain.vocabulary import (
    AlertState,
    AssetKind,
    CustomerTier,
    Priority,
    Severity,
    WorkOrderSource,
    WorkOrderState,
)

__all__ = [
    "FEATURE_PATTERN",
    "MAX_TELEMETRY_PAGE",
    "AlertExportQuery",
    "AlertQuery",
    "AssetExportQuery",
    "AssetQuery",
    "CustomerQuery",
    "DeadLetterQuery",
    "DeliveryQuery",
    "EscalationQuery",
    "KpiQuery",
    "KpiSeriesQuery",
    "PageQuery",
    "QueryModel",
    "SearchQuery",
    "SiteQuery",
    "StockNoticeQuery",
    "TechnicianQuery",
    "TelemetryCountQuery",
    "TelemetryQuery",
    "VerdictQuery",
    "WorkOrderExportQuery",
    "WorkOrderQuery",
]

FEATURE_PATTERN = r"^[a-z][a-z0-9_]{0,79}$"
# Rows per telemetry page: with at most 256 features a record (the wire's bound), a page
# stays a few megabytes however many feature names the fleet has.
MAX_TELEMETRY_PAGE = 1000

QueryId = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]
ModelName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]
DbInt = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
# A repeatable filter: any of up to 50 values.
_ANY: Any = Field(default_factory=list, max_length=50, description="repeatable: any of the values")


class QueryModel(BaseModel):
    """Base of the query-string models: unknown parameters are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PageQuery(QueryModel):
    """`limit` and `offset` of a list endpoint."""

    limit: int = Field(50, ge=1, le=500, description="page size")
    offset: int = Field(0, ge=0, le=MAX_DB_INT, description="rows to skip")


class AssetQuery(PageQuery):
    """GET /assets."""

    gateway_id: list[Name] = _ANY
    kind: list[AssetKind] = _ANY
    customer_tier: list[CustomerTier] = Field(
        default_factory=list,
        max_length=50,
        description="the tier deadlines use: the customer's, or the asset's own (repeatable)",
    )
    customer_id: list[QueryId] = _ANY
    site_id: list[QueryId] = _ANY


class CustomerQuery(PageQuery):
    """GET /customers."""

    tier: list[CustomerTier] = _ANY


class SiteQuery(PageQuery):
    """GET /sites."""

    customer_id: list[QueryId] = _ANY
    region: list[Name] = _ANY


class AlertQuery(PageQuery):
    """GET /alerts: times filter `opened_at` in [opened_after, opened_before)."""

    asset_id: list[Name] = _ANY
    state: list[AlertState] = _ANY
    active: bool | None = Field(None, description="open or acknowledged (true), or not")
    severity: list[Severity] = _ANY
    failure_mode: list[Name] = _ANY
    opened_after: UtcInput | None = None
    opened_before: UtcInput | None = None


class VerdictQuery(PageQuery):
    """GET /verdicts."""

    model: list[ModelName] = _ANY
    since: UtcInput | None = None


class WorkOrderQuery(PageQuery):
    """GET /work-orders: times filter `created_at` in [created_after, created_before)."""

    asset_id: list[Name] = _ANY
    state: list[WorkOrderState] = _ANY
    active: bool | None = Field(
        None, description="open, accepted, assigned or in progress (true), or not (false)"
    )
    priority: list[Priority] = _ANY
    source: list[WorkOrderSource] = _ANY
    failure_mode: list[Name] = _ANY
    technician_id: list[DbInt] = _ANY
    overdue: bool | None = Field(None, description="open and past resolve_by")
    created_after: UtcInput | None = None
    created_before: UtcInput | None = None


class EscalationQuery(PageQuery):
    """GET /escalations."""

    work_order_id: list[DbInt] = _ANY
    acknowledged: bool | None = None


class DeliveryQuery(PageQuery):
    """GET /webhooks/deliveries."""

    state: list[Literal["pending", "delivered", "failed", "cancelled", "skipped"]] = _ANY
    work_order_id: list[DbInt] = _ANY
    subscription_id: list[DbInt] = _ANY


class DeadLetterQuery(PageQuery):
    """GET /dead-letters."""

    gateway_id: list[QueryId] = Field(
        default_factory=list, max_length=50, description="gateway ids"
    )
    reason: list[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]] = Field(
        default_factory=list, max_length=50, description="reason codes, e.g. conflict"
    )


class TechnicianQuery(PageQuery):
    """GET /technicians."""

    region: list[Annotated[str, Field(max_length=64, pattern=r"^[^\x00]*$")]] = _ANY
    failure_mode: list[Name] = _ANY
    asset_kind: list[AssetKind] = _ANY
    active: bool | None = None


class StockNoticeQuery(PageQuery):
    """GET /stock-notices."""

    active: bool | None = Field(None, description="not yet cleared (true), or cleared")
    part_id: list[QueryId] = _ANY
    warehouse_id: list[QueryId] = _ANY


class KpiQuery(QueryModel):
    """GET /kpis: [start, end), by default the 30 days before now; scope filters AND-ed."""

    start: UtcInput | None = None
    end: UtcInput | None = None
    asset_id: Name | None = None
    customer_id: QueryId | None = None
    site_id: QueryId | None = None
    asset_kind: AssetKind | None = None


class KpiSeriesQuery(KpiQuery):
    """GET /kpis/series: weeks or months over [start, end), by default the last 365 days."""

    bucket: Literal["week", "month"] = "month"


class TelemetryCountQuery(QueryModel):
    """GET /telemetry/count."""

    asset_id: QueryId | None = None


class TelemetryQuery(QueryModel):
    """GET /telemetry: one page of at most `limit` records; `cursor` picks the page."""

    asset_id: list[QueryId] = Field(min_length=1, max_length=50)
    point: QueryId | None = None
    start: UtcInput | None = None
    end: UtcInput | None = None
    feature: list[Annotated[str, Field(pattern=FEATURE_PATTERN, max_length=80)]] | None = Field(
        None, max_length=100, description="the features to return (repeatable)"
    )
    limit: int = Field(500, ge=1, le=MAX_TELEMETRY_PAGE, description="records per page")
    cursor: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="where the page starts: the `next_cursor` of the previous page",
    )


# -- list exports and search: the filters of cloud.domain.listing, as typed query models ---
# A calendar day as text (checked as a date by cloud.domain.listing.parse_query): pydantic's
# lax date parsing would also take numbers such as 0 (the epoch).
Day = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", max_length=10)]

class _ListExportQuery(QueryModel):
    """Date range (UTC days, both inclusive) and sort key (`-key` descending)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    from_: Day | None = Field(None, alias="from", description="first day, e.g. 2026-03-01")
    to: Day | None = Field(None, description="last day, inclusive")
    sort: Annotated[str, Field(max_length=40, pattern=r"^-?[a-z_]+$")] | None = None


class AlertExportQuery(_ListExportQuery):
    """GET /export/alerts.csv: each filter may repeat (`?state=open&state=acknowledged`)."""

    state: list[AlertState] = Field(default_factory=list, max_length=20)
    severity: list[Severity] = Field(default_factory=list, max_length=20)
    asset: list[Name] = Field(default_factory=list, max_length=20)
    failure_mode: list[Name] = Field(default_factory=list, max_length=20)
    customer: list[Name] = Field(default_factory=list, max_length=20)
    tier: list[CustomerTier] = Field(default_factory=list, max_length=20)


class WorkOrderExportQuery(_ListExportQuery):
    """GET /export/work-orders.csv: each filter may repeat."""

    state: list[WorkOrderState] = Field(default_factory=list, max_length=20)
    priority: list[Priority] = Field(default_factory=list, max_length=20)
    asset: list[Name] = Field(default_factory=list, max_length=20)
    failure_mode: list[Name] = Field(default_factory=list, max_length=20)
    source: list[WorkOrderSource] = Field(default_factory=list, max_length=20)
    customer: list[Name] = Field(default_factory=list, max_length=20)
    tier: list[CustomerTier] = Field(default_factory=list, max_length=20)


class AssetExportQuery(QueryModel):
    """GET /export/assets.csv: each filter may repeat."""

    kind: list[AssetKind] = Field(default_factory=list, max_length=20)
    customer: list[Name] = Field(default_factory=list, max_length=20)
    tier: list[CustomerTier] = Field(default_factory=list, max_length=20)
    gateway: list[Name] = Field(default_factory=list, max_length=20)
    sort: Annotated[str, Field(max_length=40, pattern=r"^-?[a-z_]+$")] | None = None


class SearchQuery(QueryModel):
    """GET /search and /export/search.csv: the words to find (all of them must match)."""

    q: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    limit: int = Field(20, ge=1, le=1000, description="hits per kind")
