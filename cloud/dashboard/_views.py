"""What each page shows, read from the database and the telemetry store into plain objects.

Routes stay thin and templates stay logic-free: deadlines are judged, zones classified
and severities ordered here, once, where they can be tested without HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cloud.dashboard._format import fmt_duration
from cloud.dashboard.evidence import Evidence, read_evidence
from cloud.dashboard.i18n import N_
from cloud.dashboard.i18n import gettext as _
from cloud.dashboard.iso import iso_zone
from cloud.dashboard.zones import asset_zone
from cloud.db.models import (
    OPEN_ALERT_STATES,
    OPEN_WORK_ORDER_STATES,
    Alert,
    Asset,
    Gateway,
    WorkOrder,
)
from cloud.telemetry import TelemetryError, TelemetryReader
from ironwatch.physics import iso_class

__all__ = [
    "BOARD_COLUMNS",
    "BOARD_COLUMN_OF",
    "SEVERITY_ORDER",
    "AlertRow",
    "AssetHealth",
    "Deadline",
    "WorkOrderCard",
    "alert_row",
    "asset_health",
    "fleet_health",
    "recent_series",
    "work_order_board",
]

FloatArray = npt.NDArray[np.float64]
SEVERITY_ORDER = ("critical", "alarm", "warning", "advisory")
BOARD_COLUMNS = (
    ("open", N_("Open")),
    ("assigned", N_("Assigned")),
    ("in_progress", N_("In progress")),
    ("done", N_("Done")),
)
# States shown in another state's column.
BOARD_COLUMN_OF = {"accepted": "open", "follow_up": "done"}
# A gateway that has not reported for this long is shown offline even if it said "online":
# its last will may not have reached the broker (power cut, broker restart).
# The scoring pipeline reports the anomaly score as a ratio to each point's calibrated
# threshold, so the threshold is 1 unless the evidence names another one.
DEFAULT_SCORE_THRESHOLD = 1.0
GATEWAY_SILENT_AFTER = timedelta(minutes=2)
# How far back the fleet page looks for an asset's "current" velocity: long enough for slow
# reporting intervals, short enough that a 5-second refresh over a large fleet stays cheap
# and an older value is not passed off as current.
LATEST_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class Deadline:
    """A due time judged against now: countdown text and whether it has passed."""

    at: datetime
    overdue: bool
    text: str

    @classmethod
    def of(
        cls, at: datetime, now: datetime, *, met: bool = False, void: bool = False
    ) -> Deadline:
        left = (at - now).total_seconds()
        if void:
            # A cancelled job's deadlines were neither met nor missed.
            return cls(at, False, "n/a")
        if met:
            return cls(at, False, _("met"))
        if left < 0:
            return cls(at, True, _("overdue by %(duration)s") % {"duration": fmt_duration(-left)})
        return cls(at, False, _("in %(duration)s") % {"duration": fmt_duration(left)})


@dataclass(frozen=True)
class AlertRow:
    """One alert as listed on the fleet and asset pages."""

    id: int
    asset_id: str
    asset_name: str
    failure_mode: str
    severity: str
    state: str
    score: float
    threshold: float | None
    opened_at: datetime
    last_seen_at: datetime
    model: str
    model_version: str
    iso_zone: str | None
    rul_low_h: float | None
    rul_median_h: float | None
    rul_high_h: float | None
    evidence: Evidence
    # The plant's zone (the asset's site's), or None: the page's zone.
    zone: tzinfo | None = None


@dataclass(frozen=True)
class WorkOrderCard:
    """One work order as a card on the board and in the fleet list."""

    id: int
    title: str
    asset_id: str
    asset_name: str
    failure_mode: str
    priority: str
    state: str
    assignee: str | None
    respond_by: Deadline
    resolve_by: Deadline
    planned_for: datetime | None
    alert_id: int | None
    suggested_actions: list[str]
    spare_parts: list[str]
    created_at: datetime | None = None
    # The plant's zone (the asset's site's), or None: the page's zone.
    zone: tzinfo | None = None

    @property
    def overdue(self) -> bool:
        return self.respond_by.overdue or self.resolve_by.overdue


@dataclass(frozen=True)
class Trace:
    """A short time series: UTC epoch seconds and values."""

    ts_s: FloatArray
    values: FloatArray

    @property
    def last(self) -> float:
        return float(self.values[-1])


@dataclass
class AssetHealth:
    """An asset's current condition, everything the fleet card shows."""

    asset: Asset
    gateway_id: str | None
    gateway_online: bool
    gateway_last_seen: datetime | None
    velocity_mms: float | None
    zone: str | None
    velocity_trace: Trace | None = None
    alerts: list[AlertRow] = field(default_factory=list)
    work_orders: list[WorkOrderCard] = field(default_factory=list)

    @property
    def worst(self) -> AlertRow | None:
        """The most severe open alert, the one the card summarises."""
        if not self.alerts:
            return None
        return min(self.alerts, key=lambda a: (_severity_index(a.severity), -a.score))

    @property
    def rul(self) -> AlertRow | None:
        """The open alert with the shortest median remaining life."""
        with_rul = [a for a in self.alerts if a.rul_median_h is not None]
        return min(with_rul, key=lambda a: a.rul_median_h or 0.0) if with_rul else None

    def alerts_by_severity(self) -> list[tuple[str, int]]:
        counts = {s: 0 for s in SEVERITY_ORDER}
        for a in self.alerts:
            counts[a.severity] = counts.get(a.severity, 0) + 1
        return [(s, n) for s, n in counts.items() if n]


def _severity_index(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def _as_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    out: list[str] = []
    for item in value:
        if isinstance(item, dict):
            out.append(str(item.get("text") or item.get("name") or item.get("part") or item))
        else:
            out.append(str(item))
    return out


def alert_row(alert: Alert) -> AlertRow:
    """An alert row; the asset must be loaded (or loadable) on the alert."""
    evidence = read_evidence(alert.evidence)
    return AlertRow(
        id=alert.id,
        asset_id=alert.asset_id,
        asset_name=alert.asset.name or alert.asset_id,
        failure_mode=alert.failure_mode,
        severity=alert.severity,
        state=alert.state,
        score=alert.score,
        threshold=evidence.threshold if evidence.threshold is not None else DEFAULT_SCORE_THRESHOLD,
        opened_at=alert.opened_at,
        last_seen_at=alert.last_seen_at,
        model=alert.model,
        model_version=alert.model_version,
        iso_zone=alert.iso_zone,
        rul_low_h=alert.rul_low_h,
        rul_median_h=alert.rul_median_h,
        rul_high_h=alert.rul_high_h,
        evidence=evidence,
        zone=asset_zone(alert.asset),
    )


def work_order_card(wo: WorkOrder, now: datetime) -> WorkOrderCard:
    """A card; deadlines already met (responded, done) are not counted as overdue."""
    finished = wo.state in ("done", "follow_up", "closed", "cancelled")
    return WorkOrderCard(
        id=wo.id,
        title=wo.title,
        asset_id=wo.asset_id,
        asset_name=wo.asset.name or wo.asset_id,
        failure_mode=wo.failure_mode,
        priority=wo.priority,
        state=wo.state,
        assignee=wo.assignee,
        respond_by=Deadline.of(
            wo.respond_by, now, met=wo.responded_at is not None or wo.state != "open" or finished,
            void=wo.state == "cancelled",
        ),
        resolve_by=Deadline.of(wo.resolve_by, now, met=finished, void=wo.state == "cancelled"),
        planned_for=wo.planned_for,
        alert_id=wo.alert_id,
        suggested_actions=_as_list(wo.suggested_actions),
        spare_parts=_as_list(wo.spare_parts),
        created_at=wo.created_at,
        zone=asset_zone(wo.asset),
    )


def recent_series(
    store: TelemetryReader,
    asset_ids: Sequence[str],
    feature: str,
    now: datetime,
    window: timedelta = LATEST_WINDOW,
) -> dict[str, Trace]:
    """Per asset, the recent finite values of one feature at the point that reported last.

    One point per asset: two sensors interleaved in one line would draw a saw-tooth.
    """
    if not asset_ids:
        return {}
    try:
        frame = store.query(asset_ids=list(asset_ids), start=now - window, features=[feature])
    except TelemetryError:
        # The page must still render when the store is down; the card says "no data".
        return {}
    values = frame.column(feature)
    ok = np.isfinite(values)
    out: dict[str, Trace] = {}
    for asset_id in sorted(set(frame.asset_ids[ok].tolist())):
        rows = ok & (frame.asset_ids == asset_id)
        # Rows are time-ordered, so the last row is the point that reported last.
        point = frame.points[rows][-1]
        rows &= frame.points == point
        out[str(asset_id)] = Trace(frame.ts_s[rows], values[rows])
    return out


def _gateway_status(gw: Gateway | None, now: datetime) -> tuple[bool, datetime | None]:
    if gw is None:
        return False, None
    recent = gw.last_seen is not None and now - gw.last_seen <= GATEWAY_SILENT_AFTER
    return gw.state == "online" and recent, gw.last_seen


def _health(
    asset: Asset,
    trace: Trace | None,
    alerts: list[AlertRow],
    orders: list[WorkOrderCard],
    now: datetime,
) -> AssetHealth:
    online, last_seen = _gateway_status(asset.gateway, now)
    velocity = trace.last if trace is not None else None
    return AssetHealth(
        asset=asset,
        gateway_id=asset.gateway_id,
        gateway_online=online,
        gateway_last_seen=last_seen,
        velocity_mms=velocity,
        zone=iso_zone(velocity, *iso_class(asset.physics)),
        velocity_trace=trace,
        alerts=sorted(alerts, key=lambda a: (_severity_index(a.severity), -a.score)),
        work_orders=orders,
    )


def fleet_health(session: Session, store: TelemetryReader, now: datetime) -> list[AssetHealth]:
    """Every asset with its zone, open alerts and open work orders; worst first."""
    assets = session.scalars(
        select(Asset).options(selectinload(Asset.gateway)).order_by(Asset.id)
    ).all()
    alerts = session.scalars(
        select(Alert).options(selectinload(Alert.asset)).where(Alert.state.in_(OPEN_ALERT_STATES))
    ).all()
    orders = session.scalars(
        select(WorkOrder)
        .options(selectinload(WorkOrder.asset))
        .where(WorkOrder.state.in_(OPEN_WORK_ORDER_STATES))
        .order_by(WorkOrder.priority, WorkOrder.resolve_by)
    ).all()
    velocity = recent_series(store, [a.id for a in assets], "velocity_rms_mms", now)
    out = [
        _health(
            a,
            velocity.get(a.id),
            [alert_row(x) for x in alerts if x.asset_id == a.id],
            [work_order_card(w, now) for w in orders if w.asset_id == a.id],
            now,
        )
        for a in assets
    ]

    def rank(h: AssetHealth) -> tuple[int, int, str]:
        worst = h.worst
        sev = _severity_index(worst.severity) if worst else len(SEVERITY_ORDER)
        return (sev, "DCBA".find(h.zone) if h.zone else 4, h.asset.id)

    return sorted(out, key=rank)


def asset_health(
    session: Session, store: TelemetryReader, asset_id: str, now: datetime
) -> AssetHealth | None:
    """One asset's health, or None if there is no such asset."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        return None
    alerts = session.scalars(
        select(Alert).where(Alert.asset_id == asset_id, Alert.state.in_(OPEN_ALERT_STATES))
    ).all()
    orders = session.scalars(
        select(WorkOrder)
        .where(WorkOrder.asset_id == asset_id, WorkOrder.state.in_(OPEN_WORK_ORDER_STATES))
        .order_by(WorkOrder.priority, WorkOrder.resolve_by)
    ).all()
    velocity = recent_series(store, [asset_id], "velocity_rms_mms", now).get(asset_id)
    return _health(
        asset,
        velocity,
        [alert_row(a) for a in alerts],
        [work_order_card(w, now) for w in orders],
        now,
    )


def work_order_board(
    session: Session, now: datetime, *, done_within: timedelta = timedelta(days=7)
) -> dict[str, list[WorkOrderCard]]:
    """Cards per board column; 'done' keeps only the last week so the board stays short.

    Accepted jobs wait in the open column (nobody is dispatched yet), jobs awaiting a
    return visit in the done column (the work itself is done)."""
    states = [s for s, _ in BOARD_COLUMNS]
    orders = session.scalars(
        select(WorkOrder)
        .options(selectinload(WorkOrder.asset))
        .where(WorkOrder.state.in_([*states, *BOARD_COLUMN_OF]))
        .order_by(WorkOrder.priority, WorkOrder.resolve_by)
    ).all()
    board: dict[str, list[WorkOrderCard]] = {s: [] for s in states}
    for wo in orders:
        column = BOARD_COLUMN_OF.get(wo.state, wo.state)
        if column == "done" and wo.done_at is not None and now - wo.done_at > done_within:
            continue
        board[column].append(work_order_card(wo, now))
    return board
