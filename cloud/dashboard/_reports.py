"""Operating reports of an asset or a customer for a period: what they contain, their CSV,
and the monthly job that files them.

An asset's report: running hours in the period (from telemetry: time with the velocity RMS
above the idle level), the running-hours counter, availability (downtime from work-order
outcomes), the velocity RMS trend by day over its ISO 10816-3 zones with the latest and
the worst zone, the alerts and work orders of the period with their SLA outcome, and the
latest remaining-useful-life estimate. A customer's report is one row per machine plus
the customer's KPIs and work orders.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.dashboard.charts import Series, trend_chart
from cloud.dashboard.i18n import gettext as _
from cloud.dashboard.iso import iso_zone, zone_bands
from cloud.db.engine import SessionFactory
from cloud.db.models import Alert, Asset, Customer, Site, WorkOrder
from cloud.domain import reports as reports_domain
from cloud.domain.errors import NotFoundError
from cloud.domain.kpis import Kpis, KpiScope, compute_kpis
from cloud.domain.reports import Subject
from cloud.telemetry import TelemetryError, TelemetryReader
from ironwatch.physics import iso_class

__all__ = [
    "AssetReport",
    "CustomerReport",
    "asset_report",
    "customer_report",
    "file_monthly_reports",
    "report_csv",
]

log = logging.getLogger(__name__)

# Below this velocity RMS a machine counts as standing still (sensor noise on a stopped
# machine is well under it; ISO 10816-3 zone A starts at 1.4 mm/s for the smallest group).
IDLE_VELOCITY_MMS = 0.3
# A gap between two records longer than this many typical spacings is not counted as
# running time: the gateway or the machine was off.
GAP_FACTOR = 3.0
# Rows read per report: equal slices of the period, the first rows of each (a month at one
# record a second is 2.6 M rows; a trend by day needs far fewer).
SAMPLE_SLICES = 31 * 8
ROWS_PER_SLICE = 40


def _sla(deadline: datetime, met_at: datetime | None, cancelled: bool, now: datetime) -> str:
    if met_at is not None:
        return "met" if met_at <= deadline else "missed"
    if cancelled:
        return "n/a"
    return "missed" if now > deadline else "pending"


@dataclass(frozen=True)
class OrderLine:
    """A work order of the period with how its deadlines turned out."""

    order: WorkOrder
    response: str
    resolution: str


@dataclass(frozen=True)
class Telemetry:
    """What the telemetry says about one asset in the period."""

    running_hours: float | None = None
    velocity_mean_mms: float | None = None
    velocity_max_mms: float | None = None
    zone_latest: str | None = None
    zone_worst: str | None = None
    # The trend: mean and maximum per bin (a day; an hour when the data span under 3 days).
    bin_h: float = 24.0
    bin_start_s: list[float] = field(default_factory=list)
    bin_mean: list[float | None] = field(default_factory=list)
    bin_max: list[float | None] = field(default_factory=list)
    error: str | None = None


@dataclass
class AssetReport:
    asset: Asset
    start: datetime
    end: datetime
    generated_at: datetime
    kpis: Kpis
    telemetry: Telemetry
    alerts: list[Alert]
    orders: list[OrderLine]
    rul: Alert | None
    trend_svg: Markup = field(default_factory=Markup)

    @property
    def subject(self) -> Subject:
        return Subject("asset", self.asset.id, self.asset.name or self.asset.id)


@dataclass
class CustomerReport:
    customer: Customer
    start: datetime
    end: datetime
    generated_at: datetime
    kpis: Kpis
    machines: list[AssetReport]
    orders: list[OrderLine]

    @property
    def subject(self) -> Subject:
        return Subject("customer", self.customer.id, self.customer.name)


def _sample(
    store: TelemetryReader, asset_id: str, start: datetime, end: datetime
) -> tuple[np.ndarray, np.ndarray]:
    edges = [start + (end - start) * i / SAMPLE_SLICES for i in range(SAMPLE_SLICES + 1)]
    ts: list[np.ndarray] = []
    vs: list[np.ndarray] = []
    for a, b in itertools.pairwise(edges):
        frame = store.query(
            asset_ids=[asset_id],
            start=a,
            end=b,
            features=["velocity_rms_mms"],
            limit=ROWS_PER_SLICE,
        )
        if len(frame):
            keep = ~frame.stale
            ts.append(frame.ts_s[keep])
            vs.append(frame.column("velocity_rms_mms")[keep])
    if not ts:
        return np.zeros(0), np.zeros(0)
    t, v = np.concatenate(ts), np.concatenate(vs)
    order = np.argsort(t, kind="stable")
    return t[order], v[order]


def _running_hours(ts: np.ndarray, v: np.ndarray) -> float | None:
    """Hours with velocity above idle, from consecutive records (gaps not counted)."""
    if ts.size < 2:
        return None if ts.size == 0 else 0.0
    dt = np.diff(ts)
    typical = float(np.median(dt[dt > 0])) if np.any(dt > 0) else 0.0
    if typical <= 0:
        return 0.0
    counted = np.where(dt <= GAP_FACTOR * typical, dt, 0.0)
    running = np.isfinite(v[:-1]) & (v[:-1] > IDLE_VELOCITY_MMS)
    return float(np.sum(counted[running])) / 3600.0


def _telemetry(
    store: TelemetryReader | None, asset: Asset, start: datetime, end: datetime
) -> Telemetry:
    if store is None:
        return Telemetry(error=_("no telemetry store is attached"))
    try:
        ts, v = _sample(store, asset.id, start, end)
        full = store.query(
            asset_ids=[asset.id],
            start=start,
            end=end,
            features=["velocity_rms_mms"],
            limit=ts.size + 1,
        )
    except TelemetryError as err:
        log.warning("report telemetry of %s unavailable: %s", asset.id, err)
        return Telemetry(error=_("telemetry store unavailable"))
    complete = len(full) <= ts.size
    group, foundation = iso_class(asset.physics)
    finite = np.isfinite(v)
    span_s = float(ts[-1] - ts[0]) if ts.size > 1 else 0.0
    bin_s = 86400.0 if span_s > 3 * 86400.0 else 3600.0
    first = float(np.floor(ts[0] / bin_s) * bin_s) if ts.size else start.timestamp()
    idx = np.floor((ts - first) / bin_s).astype(np.int64) if ts.size else np.zeros(0, np.int64)
    bin_start_s: list[float] = []
    bin_mean: list[float | None] = []
    bin_max: list[float | None] = []
    for d in range(int(idx.max()) + 1 if idx.size else 0):
        sel = (idx == d) & finite
        bin_start_s.append(first + d * bin_s)
        bin_mean.append(float(np.mean(v[sel])) if np.any(sel) else None)
        bin_max.append(float(np.max(v[sel])) if np.any(sel) else None)
    if complete:
        running = _running_hours(ts, v)
    else:
        # Sampled: running share of the samples times the hours the samples span.
        share = float(np.mean(v[finite] > IDLE_VELOCITY_MMS)) if np.any(finite) else 0.0
        covered = (ts[-1] - ts[0]) / 3600.0 if ts.size > 1 else 0.0
        running = share * covered
    zones = [iso_zone(float(x), group, foundation) for x in v[finite]]
    worst = max((z for z in zones if z), default=None)
    return Telemetry(
        running_hours=running,
        velocity_mean_mms=float(np.mean(v[finite])) if np.any(finite) else None,
        velocity_max_mms=float(np.max(v[finite])) if np.any(finite) else None,
        zone_latest=zones[-1] if zones else None,
        zone_worst=worst,
        bin_h=bin_s / 3600.0,
        bin_start_s=bin_start_s,
        bin_mean=bin_mean,
        bin_max=bin_max,
    )


def _orders(
    session: Session, scope: KpiScope, start: datetime, end: datetime, now: datetime
) -> list[OrderLine]:
    query = scope.restrict(
        select(WorkOrder)
        .where(WorkOrder.created_at >= start, WorkOrder.created_at < end)
        .order_by(WorkOrder.created_at),
        WorkOrder.asset_id,
    )
    return [
        OrderLine(
            wo,
            _sla(wo.respond_by, wo.responded_at, wo.state == "cancelled", now),
            _sla(wo.resolve_by, wo.done_at, wo.state == "cancelled", now),
        )
        for wo in session.scalars(query)
    ]


def _trend(asset: Asset, t: Telemetry) -> Markup:
    """Mean and maximum velocity RMS per day (or hour) over the asset's ISO 10816-3 zones."""
    x = np.array([s + t.bin_h * 1800.0 for s in t.bin_start_s], dtype=np.float64)

    def ys(values: list[float | None]) -> np.ndarray:
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)

    return trend_chart(
        [
            Series(_("mean"), x, ys(t.bin_mean), "s0"),
            Series(_("maximum"), x, ys(t.bin_max), "s1"),
        ],
        title=_("Velocity RMS"),
        unit="mm/s",
        bands=zone_bands(*iso_class(asset.physics)),
    )


def asset_report(
    session: Session,
    store: TelemetryReader | None,
    asset_id: str,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
) -> AssetReport:
    """The report of one asset for [start, end); NotFoundError for an unknown asset."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFoundError(f"asset {asset_id!r} not found")
    scope = KpiScope(asset_id=asset.id)
    as_of = min(now, end)
    kpis = compute_kpis(session, start=start, end=end, scope=scope, now=as_of)
    alerts = list(
        session.scalars(
            select(Alert)
            .where(Alert.asset_id == asset.id, Alert.opened_at >= start, Alert.opened_at < end)
            .order_by(Alert.opened_at)
        )
    )
    rul = session.scalars(
        select(Alert)
        .where(Alert.asset_id == asset.id, Alert.rul_median_h.is_not(None), Alert.opened_at < end)
        .order_by(Alert.last_seen_at.desc())
        .limit(1)
    ).first()
    telemetry = _telemetry(store, asset, start, min(end, max(now, start)))
    report = AssetReport(
        asset=asset,
        start=start,
        end=end,
        generated_at=now,
        kpis=kpis,
        telemetry=telemetry,
        alerts=alerts,
        orders=_orders(session, scope, start, end, as_of),
        rul=rul,
    )
    report.trend_svg = _trend(asset, telemetry)
    return report


def customer_report(
    session: Session,
    store: TelemetryReader | None,
    customer_id: str,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
) -> CustomerReport:
    """The report of one customer's machines for [start, end)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFoundError(f"customer {customer_id!r} not found")
    scope = KpiScope(customer_id=customer.id)
    as_of = min(now, end)
    asset_ids = session.scalars(
        select(Asset.id)
        .join(Site, Asset.site_id == Site.id)
        .where(Site.customer_id == customer.id)
        .order_by(Asset.id)
    ).all()
    machines = [asset_report(session, store, a, start=start, end=end, now=now) for a in asset_ids]
    return CustomerReport(
        customer=customer,
        start=start,
        end=end,
        generated_at=now,
        kpis=compute_kpis(session, start=start, end=end, scope=scope, now=as_of),
        machines=machines,
        orders=_orders(session, scope, start, end, as_of),
    )


REPORT_CSV_COLUMNS = (
    "section",
    "asset_id",
    "asset_name",
    "item",
    "opened_at",
    "state",
    "priority_or_severity",
    "failure_mode",
    "response_sla",
    "resolution_sla",
    "value",
    "unit",
)


def _summary_rows(r: AssetReport) -> list[list[object]]:
    t, k = r.telemetry, r.kpis
    name = r.asset.name or r.asset.id
    figures: list[tuple[str, object, str]] = [
        ("running_hours_in_period", t.running_hours, "h"),
        ("running_hours_counter", r.asset.running_hours, "h"),
        ("availability", k.availability, "ratio"),
        ("downtime", k.downtime_h, "h"),
        ("velocity_rms_mean", t.velocity_mean_mms, "mm/s"),
        ("velocity_rms_max", t.velocity_max_mms, "mm/s"),
        ("iso_zone_latest", t.zone_latest, ""),
        ("iso_zone_worst", t.zone_worst, ""),
        ("alerts", len(r.alerts), ""),
        ("work_orders", len(r.orders), ""),
        ("rul_median", r.rul.rul_median_h if r.rul else None, "h"),
    ]
    return [
        ["summary", r.asset.id, name, item, None, None, None, None, None, None, value, unit]
        for item, value, unit in figures
    ]


def _detail_rows(r: AssetReport) -> list[list[object]]:
    name = r.asset.name or r.asset.id
    rows: list[list[object]] = []
    for a in r.alerts:
        rows.append(
            ["alert", a.asset_id, name, f"#{a.id}", a.opened_at, a.state, a.severity,
             a.failure_mode, None, None, a.score, "score"]
        )  # fmt: skip
    return rows


def _order_rows(lines: Sequence[OrderLine], names: dict[str, str]) -> list[list[object]]:
    return [
        ["work_order", o.order.asset_id, names.get(o.order.asset_id, o.order.asset_id),
         f"WO-{o.order.id}", o.order.created_at, o.order.state, o.order.priority,
         o.order.failure_mode, o.response, o.resolution, None, None]
        for o in lines
    ]  # fmt: skip


def report_csv(report: AssetReport | CustomerReport) -> tuple[tuple[str, ...], list[list[object]]]:
    """The report as CSV rows: per-asset figures, alerts and work orders with SLA outcome."""
    machines = [report] if isinstance(report, AssetReport) else report.machines
    names = {m.asset.id: m.asset.name or m.asset.id for m in machines}
    rows: list[list[object]] = []
    for m in machines:
        rows.extend(_summary_rows(m))
    for m in machines:
        rows.extend(_detail_rows(m))
    rows.extend(_order_rows(report.orders, names))
    return REPORT_CSV_COLUMNS, rows


def file_monthly_reports(
    session_factory: SessionFactory,
    store: TelemetryReader | None,
    render: Callable[[AssetReport | CustomerReport], tuple[str, str]],
    *,
    now: datetime,
    locale: str = "en",
) -> int:
    """File last month's report of every asset and customer that has none yet; one failing
    subject is logged and skipped, the others are filed. Returns how many were filed."""
    with session_factory() as session:
        start, end, subjects = reports_domain.due_reports(session, now)
    filed = 0
    for subject in subjects:
        with session_factory() as session:
            try:
                if subject.kind == "asset":
                    report: AssetReport | CustomerReport = asset_report(
                        session, store, subject.id, start=start, end=end, now=now
                    )
                else:
                    report = customer_report(
                        session, store, subject.id, start=start, end=end, now=now
                    )
                html, csv = render(report)
                reports_domain.file_report(
                    session, subject, start=start, end=end, html=html, csv=csv,
                    locale=locale, now=now,
                )  # fmt: skip
                session.commit()
                filed += 1
            except Exception:
                session.rollback()
                log.exception("monthly report of %s %s failed", subject.kind, subject.id)
    return filed
