"""Reliability KPIs over a time window and as a series of weeks or months.

How fast people react (acknowledge, respond, resolve), whether the service levels were kept
(by priority and by customer tier), how good the alerts are (false alarms, first-time fixes,
lead time achieved), how much the machines could run (availability) and what customers
said (satisfaction). docs/dashboard.md ("KPIs") states each definition in words.

Rows are loaded once for the whole range and split into buckets in Python, so a year of
weekly buckets costs three queries, not 3 × 52.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cloud.db.models import Alert, Asset, Customer, Site, Verdict, WorkOrder
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidInputError
from cloud.domain.vocabulary import CUSTOMER_TIERS, PRIORITIES

__all__ = [
    "BUCKETS",
    "KPI_COLUMNS",
    "Bucket",
    "KpiScope",
    "Kpis",
    "SlaCell",
    "bucket_edges",
    "compute_kpis",
    "kpi_row",
    "kpi_series",
]

_T = TypeVar("_T")
_Q = TypeVar("_Q", bound="Select[*tuple[Any, ...]]")
Bucket = Literal["week", "month"]
BUCKETS: tuple[Bucket, ...] = ("week", "month")
# A series longer than this is refused: a page of 10 years of weeks helps nobody.
MAX_BUCKETS = 160


@dataclass(frozen=True)
class KpiScope:
    """Which machines count: all, or one customer's, one site's, one kind or one asset."""

    customer_id: str | None = None
    site_id: str | None = None
    asset_kind: str | None = None
    asset_id: str | None = None

    def restrict(self, query: _Q, column: Any) -> _Q:
        """`query` limited to rows whose asset (`column`) is in scope."""
        if self.asset_id is not None:
            query = query.where(column == self.asset_id)
        if self.site_id is None and self.customer_id is None and self.asset_kind is None:
            return query
        assets = select(Asset.id)
        if self.site_id is not None:
            assets = assets.where(Asset.site_id == self.site_id)
        if self.customer_id is not None:
            sites = select(Site.id).where(Site.customer_id == self.customer_id)
            assets = assets.where(Asset.site_id.in_(sites))
        if self.asset_kind is not None:
            assets = assets.where(Asset.kind == self.asset_kind)
        return query.where(column.in_(assets))


@dataclass(frozen=True)
class SlaCell:
    """Deadlines judged and met; `rate` is None when none was judged yet."""

    met: int = 0
    judged: int = 0

    @property
    def rate(self) -> float | None:
        return self.met / self.judged if self.judged else None

    def as_dict(self) -> dict[str, Any]:
        return {"met": self.met, "judged": self.judged, "rate": self.rate}


@dataclass(frozen=True)
class Kpis:
    """KPIs for alerts and work orders created within [start, end). Hours; None if no data.

    `sla_by_priority` and `sla_by_tier` map a priority (P0..P3) or tier to
    {"response": SlaCell, "resolution": SlaCell}. A cancelled work order's resolution is not
    judged, nor its response unless someone responded before it was cancelled.
    """

    start: datetime
    end: datetime
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
    lead_times_achieved: int = 0
    mean_lead_time_achieved_h: float | None = None
    first_time_fixes: int = 0
    first_time_fix_judged: int = 0
    first_time_fix_rate: float | None = None
    assets: int = 0
    asset_hours: float = 0.0
    downtime_h: float = 0.0
    availability: float | None = None
    satisfaction_mean: float | None = None
    satisfaction_count: int = 0
    sla_by_priority: dict[str, dict[str, SlaCell]] = field(default_factory=dict)
    sla_by_tier: dict[str, dict[str, SlaCell]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (SLA cells as {met, judged, rate})."""
        out = asdict(self)
        for key in ("sla_by_priority", "sla_by_tier"):
            out[key] = {
                group: {kind: cell.as_dict() for kind, cell in cells.items()}
                for group, cells in getattr(self, key).items()
            }
        return out


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600.0


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _ratio(good: int, total: int) -> float | None:
    return good / total if total else None


def _response(w: Any, as_of: datetime) -> bool | None:
    """Met (True), missed (False) or not judged yet / not applicable (None).

    A work order cancelled before anyone responded is n/a; one that was answered and then
    cancelled (e.g. found to be a false alarm on site) is judged on that answer."""
    if w.responded_at is not None:
        return bool(w.responded_at <= w.respond_by)
    if w.state == "cancelled":
        return None
    return False if w.respond_by < as_of else None


def _resolution(w: Any, as_of: datetime) -> bool | None:
    if w.state == "cancelled":
        return None
    if w.done_at is not None:
        return bool(w.done_at <= w.resolve_by)
    return False if w.resolve_by < as_of else None


def _sla(orders: Iterable[Any], as_of: datetime) -> dict[str, SlaCell]:
    counts = {"response": [0, 0], "resolution": [0, 0]}
    for w in orders:
        for kind, judge in (("response", _response), ("resolution", _resolution)):
            verdict = judge(w, as_of)
            if verdict is not None:
                counts[kind][1] += 1
                counts[kind][0] += int(verdict)
    return {kind: SlaCell(met=m, judged=j) for kind, (m, j) in counts.items()}


def _lead_time_achieved(w: Any) -> float | None:
    """Alert opened → the failure (when confirmed) or else the repair (work order done)."""
    if w.alert_opened_at is None or w.state == "cancelled":
        return None
    end = w.failure_confirmed_at or w.done_at
    return None if end is None else _hours(end - w.alert_opened_at)


def _asset_hours(assets: Sequence[Any], start: datetime, end: datetime) -> float:
    # An asset counts from when it was registered; the period is the upper bound.
    return sum(max(0.0, _hours(end - max(start, a.created_at))) for a in assets)


def _compute(
    *,
    start: datetime,
    end: datetime,
    as_of: datetime,
    alerts: Sequence[Any],
    orders: Sequence[Any],
    finished: Sequence[Any],
    false_alarm_ids: set[int],
    assets: Sequence[Any],
) -> Kpis:
    """The KPIs of one period from rows already chosen for it (pure: no queries).

    Rows are read-only records (SQL rows) with the columns `_load` selects."""
    ack = [_hours(a.acknowledged_at - a.opened_at) for a in alerts if a.acknowledged_at]
    res = [
        _hours(a.resolved_at - a.opened_at)
        for a in alerts
        if a.resolved_at is not None and a.state == "resolved"
    ]
    respond = [_hours(w.responded_at - w.created_at) for w in orders if w.responded_at]
    resolve = [_hours(w.done_at - w.created_at) for w in orders if w.done_at]
    overall = _sla(orders, as_of)
    by_priority: dict[str, dict[str, SlaCell]] = {
        p: _sla([w for w in orders if w.priority == p], as_of) for p in PRIORITIES
    }
    by_tier: dict[str, dict[str, SlaCell]] = {
        t: _sla([w for w in orders if w.tier == t], as_of) for t in CUSTOMER_TIERS
    }
    false_alarms = sum(1 for a in alerts if a.id in false_alarm_ids)
    leads = [
        _hours(w.failure_confirmed_at - w.alert_opened_at)
        for w in orders
        if w.failure_confirmed_at is not None and w.alert_opened_at is not None
    ]
    achieved = [h for h in (_lead_time_achieved(w) for w in orders) if h is not None]
    ftf = [w.first_time_fix for w in orders if w.first_time_fix is not None]
    ratings = [w.satisfaction for w in orders if w.satisfaction is not None]
    hours = _asset_hours(assets, start, end)
    down = sum(float(w.downtime_h or 0.0) for w in finished)
    down = min(down, hours)
    return Kpis(
        start=start,
        end=end,
        alerts_opened=len(alerts),
        mean_time_to_acknowledge_h=_mean(ack),
        mean_time_to_resolve_alert_h=_mean(res),
        work_orders_opened=len(orders),
        mean_time_to_respond_h=_mean(respond),
        mean_time_to_resolve_h=_mean(resolve),
        sla_response_compliance=overall["response"].rate,
        sla_resolution_compliance=overall["resolution"].rate,
        false_alarms=false_alarms,
        false_alarm_rate=_ratio(false_alarms, len(alerts)),
        confirmed_failures=len(leads),
        mean_lead_time_h=_mean(leads),
        min_lead_time_h=min(leads) if leads else None,
        lead_times_achieved=len(achieved),
        mean_lead_time_achieved_h=_mean(achieved),
        first_time_fixes=sum(1 for v in ftf if v),
        first_time_fix_judged=len(ftf),
        first_time_fix_rate=_ratio(sum(1 for v in ftf if v), len(ftf)),
        assets=len(assets),
        asset_hours=hours,
        downtime_h=down,
        availability=1.0 - down / hours if hours > 0 else None,
        satisfaction_mean=_mean([float(r) for r in ratings]),
        satisfaction_count=len(ratings),
        sla_by_priority=by_priority,
        sla_by_tier=by_tier,
    )


@dataclass(frozen=True)
class _Rows:
    alerts: list[Any]
    orders: list[Any]
    finished: list[Any]
    false_alarm_ids: set[int]
    assets: list[Any]


def _load(session: Session, start: datetime, end: datetime, scope: KpiScope) -> _Rows:
    """The rows of [start, end) in scope, as plain SQL rows of the columns the KPIs read
    (ORM objects with their JSON evidence would cost ten times as much to build)."""
    alert_q = scope.restrict(
        select(
            Alert.id, Alert.asset_id, Alert.state, Alert.opened_at, Alert.acknowledged_at,
            Alert.resolved_at,
        ).where(Alert.opened_at >= start, Alert.opened_at < end),
        Alert.asset_id,
    )  # fmt: skip
    # The tier that counts: the asset's site's customer's, else the asset's own.
    tier = func.coalesce(Customer.tier, Asset.customer_tier).label("tier")
    wo_q = scope.restrict(
        select(
            WorkOrder.id, WorkOrder.state, WorkOrder.priority, WorkOrder.created_at,
            WorkOrder.respond_by, WorkOrder.resolve_by, WorkOrder.responded_at,
            WorkOrder.done_at, WorkOrder.failure_confirmed_at, WorkOrder.satisfaction,
            WorkOrder.first_time_fix, Alert.opened_at.label("alert_opened_at"), tier,
        )
        .join(Asset, Asset.id == WorkOrder.asset_id)
        .outerjoin(Site, Site.id == Asset.site_id)
        .outerjoin(Customer, Customer.id == Site.customer_id)
        .outerjoin(Alert, Alert.id == WorkOrder.alert_id)
        .where(WorkOrder.created_at >= start, WorkOrder.created_at < end),
        WorkOrder.asset_id,
    )  # fmt: skip
    # Downtime counts in the period the work finished in, whenever the order was opened.
    done_q = scope.restrict(
        select(WorkOrder.id, WorkOrder.done_at, WorkOrder.downtime_h).where(
            WorkOrder.done_at >= start, WorkOrder.done_at < end
        ),
        WorkOrder.asset_id,
    )
    asset_q = scope.restrict(
        select(Asset.id, Asset.created_at).where(Asset.created_at < end), Asset.id
    )
    false_q = scope.restrict(
        select(func.distinct(Verdict.alert_id))
        .join(Alert, Alert.id == Verdict.alert_id)
        .where(Alert.opened_at >= start, Alert.opened_at < end, Verdict.verdict == "false_alarm"),
        Alert.asset_id,
    )
    return _Rows(
        alerts=list(session.execute(alert_q)),
        orders=list(session.execute(wo_q)),
        finished=list(session.execute(done_q)),
        false_alarm_ids={i for i in session.scalars(false_q) if i is not None},
        assets=list(session.execute(asset_q)),
    )


def _split(
    rows: Sequence[_T], when: Callable[[_T], datetime | None], edges: Sequence[datetime]
) -> list[list[_T]]:
    """Rows into the buckets between consecutive `edges` by their time (one pass, bisect)."""
    out: list[list[_T]] = [[] for _ in edges[:-1]]
    for row in rows:
        at = when(row)
        if at is None:
            continue
        i = bisect.bisect_right(edges, at) - 1
        if 0 <= i < len(out):
            out[i].append(row)
    return out


def _check_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = require_utc(start), require_utc(end)
    if start >= end:
        raise InvalidInputError("start must be before end")
    return start, end


def compute_kpis(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    asset_id: str | None = None,
    scope: KpiScope | None = None,
    now: datetime | None = None,
) -> Kpis:
    """The KPIs of [start, end); deadlines still running at `now` (default `end`) are not
    yet counted as met or missed."""
    start, end = _check_range(start, end)
    scope = scope or KpiScope()
    if asset_id is not None:
        scope = KpiScope(scope.customer_id, scope.site_id, scope.asset_kind, asset_id)
    rows = _load(session, start, end, scope)
    return _compute(
        start=start,
        end=end,
        as_of=require_utc(now) if now is not None else end,
        alerts=rows.alerts,
        orders=rows.orders,
        finished=rows.finished,
        false_alarm_ids=rows.false_alarm_ids,
        assets=rows.assets,
    )


def _floor(at: datetime, bucket: Bucket) -> datetime:
    day = datetime(at.year, at.month, at.day, tzinfo=UTC)
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next(at: datetime, bucket: Bucket) -> datetime:
    if bucket == "week":
        return at + timedelta(days=7)
    if at.month == 12:
        return at.replace(year=at.year + 1, month=1)
    return at.replace(month=at.month + 1)


def bucket_edges(start: datetime, end: datetime, bucket: Bucket) -> list[datetime]:
    """Edges of the weeks (Monday 00:00 UTC) or calendar months (UTC) covering [start, end):
    the first edge is at or before `start`, the last at or after `end`."""
    start, end = _check_range(start, end)
    if bucket not in BUCKETS:
        raise InvalidInputError(f"unknown bucket {bucket!r}", details={"allowed": list(BUCKETS)})
    edges = [_floor(start, bucket)]
    while edges[-1] < end:
        edges.append(_next(edges[-1], bucket))
        if len(edges) > MAX_BUCKETS + 1:
            raise InvalidInputError(
                f"at most {MAX_BUCKETS} {bucket}s in a series; choose a shorter period"
            )
    return edges


def kpi_series(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    bucket: Bucket = "month",
    scope: KpiScope | None = None,
    now: datetime | None = None,
) -> list[Kpis]:
    """The KPIs of each week or month touching [start, end), oldest first.

    Buckets are whole weeks or months (the first and last may reach outside the period);
    each bucket is judged as of `now` (default the series' end).
    """
    edges = bucket_edges(start, end, bucket)
    scope = scope or KpiScope()
    rows = _load(session, edges[0], edges[-1], scope)
    as_of = require_utc(now) if now is not None else require_utc(end)
    out: list[Kpis] = []
    alerts = _split(rows.alerts, lambda a: a.opened_at, edges)
    orders = _split(rows.orders, lambda w: w.created_at, edges)
    finished = _split(rows.finished, lambda w: w.done_at, edges)
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        out.append(
            _compute(
                start=lo,
                end=hi,
                as_of=as_of,
                alerts=alerts[i],
                orders=orders[i],
                finished=finished[i],
                false_alarm_ids=rows.false_alarm_ids,
                assets=[a for a in rows.assets if a.created_at < hi],
            )
        )
    return out


_SCALAR_COLUMNS = (
    "start",
    "end",
    "alerts_opened",
    "mean_time_to_acknowledge_h",
    "mean_time_to_resolve_alert_h",
    "work_orders_opened",
    "mean_time_to_respond_h",
    "mean_time_to_resolve_h",
    "sla_response_compliance",
    "sla_resolution_compliance",
    "false_alarms",
    "false_alarm_rate",
    "first_time_fixes",
    "first_time_fix_judged",
    "first_time_fix_rate",
    "confirmed_failures",
    "mean_lead_time_h",
    "lead_times_achieved",
    "mean_lead_time_achieved_h",
    "assets",
    "asset_hours",
    "downtime_h",
    "availability",
    "satisfaction_mean",
    "satisfaction_count",
)
_GROUP_COLUMNS = tuple(
    f"sla_{kind}_{group}"
    for group in (*PRIORITIES, *CUSTOMER_TIERS)
    for kind in ("response", "resolution")
)
# The KPI table as CSV columns: the scalars, then compliance per priority and per tier.
KPI_COLUMNS: tuple[str, ...] = (*_SCALAR_COLUMNS, *_GROUP_COLUMNS)


def kpi_row(k: Kpis) -> list[object]:
    """One period's KPIs in the order of KPI_COLUMNS (None where there is no data)."""
    row: list[object] = [getattr(k, name) for name in _SCALAR_COLUMNS]
    for group in (*PRIORITIES, *CUSTOMER_TIERS):
        cells = k.sla_by_priority.get(group) or k.sla_by_tier.get(group) or {}
        for kind in ("response", "resolution"):
            cell = cells.get(kind)
            row.append(None if cell is None else cell.rate)
    return row
