"""Schemas for KPIs, webhook deliveries, API tokens and telemetry."""

from __future__ import annotations

from pydantic import Field

from cloud.api.schemas.common import Id, InputModel, PublicModel, UtcInput, UtcTime
from cloud.domain.vocabulary import Role

__all__ = [
    "KpiSeriesPublic",
    "KpisPublic",
    "SlaCellPublic",
    "TelemetryPage",
    "TelemetryRow",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
    "WebhookDeliveryPublic",
]


class SlaCellPublic(PublicModel):
    """Deadlines judged and met; `rate` is null when none was judged yet."""

    met: int
    judged: int
    rate: float | None


class KpisPublic(PublicModel):
    """Reliability KPIs over [start, end); durations in hours, ratios in [0, 1].

    `sla_by_priority` / `sla_by_tier`: {"P0": {"response": cell, "resolution": cell}, ...}.
    """

    start: UtcTime
    end: UtcTime
    alerts_opened: int
    mean_time_to_acknowledge_h: float | None
    mean_time_to_resolve_alert_h: float | None
    work_orders_opened: int
    mean_time_to_respond_h: float | None
    mean_time_to_resolve_h: float | None
    sla_response_compliance: float | None
    sla_resolution_compliance: float | None
    false_alarms: int
    false_alarm_rate: float | None
    confirmed_failures: int
    mean_lead_time_h: float | None
    min_lead_time_h: float | None
    lead_times_achieved: int
    mean_lead_time_achieved_h: float | None
    first_time_fixes: int
    first_time_fix_judged: int
    first_time_fix_rate: float | None
    assets: int
    asset_hours: float
    downtime_h: float
    availability: float | None
    satisfaction_mean: float | None
    satisfaction_count: int
    sla_by_priority: dict[str, dict[str, SlaCellPublic]]
    sla_by_tier: dict[str, dict[str, SlaCellPublic]]


class KpiSeriesPublic(PublicModel):
    """The KPIs of each week or month touching [start, end), oldest first."""

    start: UtcTime
    end: UtcTime
    bucket: str
    buckets: list[KpisPublic]


class WebhookDeliveryPublic(PublicModel):
    """One outbox row: what was sent, how often, and how it went."""

    id: int
    event: str
    work_order_id: int | None
    subscription_id: int | None
    state: str
    attempts: int
    created_at: UtcTime
    next_attempt_at: UtcTime
    last_attempt_at: UtcTime | None
    delivered_at: UtcTime | None
    last_status_code: int | None
    last_error: str | None


class TokenCreate(InputModel):
    """A new API token; gateway tokens name their gateway, customer tokens their customer."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")
    role: Role
    gateway_id: Id | None = None
    customer_id: Id | None = None
    expires_at: UtcInput | None = None


class TokenPublic(PublicModel):
    """A token's metadata; the token itself is never shown again."""

    id: int
    name: str
    role: str
    prefix: str
    gateway_id: str | None
    customer_id: str | None
    created_at: UtcTime
    created_by: str
    last_used_at: UtcTime | None
    expires_at: UtcTime | None
    revoked_at: UtcTime | None


class TokenCreated(TokenPublic):
    """The new token, shown once: store it now."""

    token: str


class TelemetryRow(PublicModel):
    """One feature record; missing feature values are null."""

    ts: UtcTime
    gateway_id: str
    seq: int
    asset_id: str
    point: str
    window_s: float
    stale: bool
    features: dict[str, float | None]


class TelemetryCount(PublicModel):
    """How many feature records the store holds for an asset (or the whole fleet)."""

    asset_id: str | None
    count: int


class TelemetryPage(PublicModel):
    """One page of feature records in time order, at most `limit`, and where the next starts."""

    items: list[TelemetryRow]
    count: int
    limit: int
    feature_names: list[str]
    next_cursor: str | None = None
    next: str | None = Field(None, description="the path and query of the next page")
