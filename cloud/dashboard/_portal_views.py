"""What the customer portal shows, read into plain objects: one customer's machines, their
health, and the progress of their work orders.

Everything here is read through a `Scope` bound to the customer, so another customer's
machine never reaches a page; templates stay logic-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cloud.dashboard._labels import term
from cloud.dashboard._views import AssetHealth, alert_row, recent_series, work_order_card
from cloud.dashboard.i18n import gettext as _
from cloud.dashboard.iso import iso_zone
from cloud.db.models import OPEN_ALERT_STATES, OPEN_WORK_ORDER_STATES, Alert, Asset, WorkOrder
from cloud.domain.scope import Scope
from cloud.domain.workorders import RATEABLE_STATES
from cloud.telemetry import TelemetryReader
from ironwatch.physics import iso_class

__all__ = [
    "FINISHED_WITHIN",
    "PortalHome",
    "TimelineStep",
    "WorkOrderProgress",
    "portal_asset",
    "portal_home",
    "work_order_progress",
]

# Finished work orders stay on the portal's front page this long (to be rated).
FINISHED_WITHIN = timedelta(days=90)


def _steps() -> tuple[tuple[str, str], ...]:
    # A function, not a constant: the labels are translated per request.
    return (
        ("open", _("Reported")),
        ("assigned", _("Technician assigned")),
        ("in_progress", _("Work under way")),
        ("done", _("Work done")),
        ("closed", _("Closed")),
    )


@dataclass(frozen=True)
class TimelineStep:
    """One step of a work order's progress: reached when, and whether it is the current one."""

    state: str
    label: str
    reached_at: datetime | None
    current: bool
    # Reached, or passed on the way to the current step (a job may skip a step).
    passed: bool


@dataclass(frozen=True)
class WorkOrderProgress:
    """A work order as the customer follows it."""

    id: int
    title: str
    asset_id: str
    asset_name: str
    state: str
    priority: str
    source: str
    created_at: datetime
    respond_by: datetime
    responded_at: datetime | None
    resolve_by: datetime
    steps: list[TimelineStep]
    rateable: bool
    satisfaction: int | None
    feedback: str | None
    history: list[tuple[datetime, str, str]]


def work_order_progress(wo: WorkOrder) -> WorkOrderProgress:
    """The timeline of the usual steps, each with the first time it was reached.

    A state outside the usual steps (cancelled, or one added later) is shown as a step of
    its own after the ones reached, so the customer always sees where the job stands.
    """
    reached: dict[str, datetime] = {"open": wo.created_at}
    history: list[tuple[datetime, str, str]] = []
    for event in wo.events:
        if event.to_state is not None:
            reached.setdefault(event.to_state, event.at)
            history.append((event.at, event.to_state, event.actor))
        elif event.kind == "rated":
            history.append((event.at, "rated", event.actor))
    # The work order's own stamps, for steps reached without a history entry.
    for state, at in (
        ("done", wo.done_at), ("closed", wo.closed_at), ("cancelled", wo.cancelled_at)
    ):
        if at is not None:
            reached.setdefault(state, at)
    steps = _steps()
    order = [state for state, _label in steps]
    now_at = order.index(wo.state) if wo.state in order else -1
    timeline = [
        TimelineStep(
            state,
            label,
            reached.get(state),
            current=wo.state == state,
            passed=state in reached or i <= now_at,
        )
        for i, (state, label) in enumerate(steps)
    ]
    if now_at < 0:
        # Drop the steps never reached after a detour (e.g. cancelled while open).
        timeline = [s for s in timeline if s.reached_at is not None]
        label = _("Cancelled") if wo.state == "cancelled" else term(wo.state)
        timeline.append(
            TimelineStep(wo.state, label, reached.get(wo.state), current=True, passed=True)
        )
    return WorkOrderProgress(
        id=wo.id,
        title=wo.title,
        asset_id=wo.asset_id,
        asset_name=wo.asset.name or wo.asset_id,
        state=wo.state,
        priority=wo.priority,
        source=wo.source,
        created_at=wo.created_at,
        respond_by=wo.respond_by,
        responded_at=wo.responded_at,
        resolve_by=wo.resolve_by,
        steps=timeline,
        rateable=wo.state in RATEABLE_STATES and wo.satisfaction is None,
        satisfaction=wo.satisfaction,
        feedback=wo.feedback,
        history=history,
    )


@dataclass
class PortalHome:
    """The portal's front page: the machines, open and recently finished work orders."""

    machines: list[AssetHealth]
    open_orders: list[WorkOrderProgress]
    finished_orders: list[WorkOrderProgress]


def _machines(
    session: Session, store: TelemetryReader | None, now: datetime, assets: list[Asset]
) -> list[AssetHealth]:
    ids = [a.id for a in assets]
    alerts = session.scalars(
        select(Alert)
        .options(selectinload(Alert.asset))
        .where(Alert.asset_id.in_(ids), Alert.state.in_(OPEN_ALERT_STATES))
    ).all()
    orders = session.scalars(
        select(WorkOrder)
        .options(selectinload(WorkOrder.asset))
        .where(WorkOrder.asset_id.in_(ids), WorkOrder.state.in_(OPEN_WORK_ORDER_STATES))
        .order_by(WorkOrder.priority, WorkOrder.resolve_by)
    ).all()
    velocity = recent_series(store, ids, "velocity_rms_mms", now) if store is not None else {}
    out: list[AssetHealth] = []
    for asset in assets:
        trace = velocity.get(asset.id)
        speed = trace.last if trace is not None else None
        out.append(
            AssetHealth(
                asset=asset,
                gateway_id=asset.gateway_id,
                gateway_online=False,
                gateway_last_seen=None,
                velocity_mms=speed,
                zone=iso_zone(speed, *iso_class(asset.physics)),
                velocity_trace=trace,
                alerts=[alert_row(a) for a in alerts if a.asset_id == asset.id],
                work_orders=[work_order_card(w, now) for w in orders if w.asset_id == asset.id],
            )
        )
    return out


def portal_home(
    session: Session, scope: Scope, store: TelemetryReader | None, now: datetime
) -> PortalHome:
    """The customer's machines with their health, and its work orders."""
    assets = list(
        session.scalars(
            scope.restrict(select(Asset).options(selectinload(Asset.site)), Asset.id).order_by(
                Asset.name, Asset.id
            )
        )
    )
    orders = session.scalars(
        scope.restrict(
            select(WorkOrder).options(
                selectinload(WorkOrder.asset), selectinload(WorkOrder.events)
            ),
            WorkOrder.asset_id,
        ).order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc())
    ).all()
    open_orders = [work_order_progress(w) for w in orders if w.state in OPEN_WORK_ORDER_STATES]
    finished = [
        work_order_progress(w)
        for w in orders
        if w.state in RATEABLE_STATES
        and (w.done_at or w.closed_at or w.updated_at) >= now - FINISHED_WITHIN
    ]
    return PortalHome(
        machines=_machines(session, store, now, assets),
        open_orders=open_orders,
        finished_orders=finished,
    )


def portal_asset(
    session: Session, scope: Scope, store: TelemetryReader | None, asset_id: str, now: datetime
) -> tuple[AssetHealth, list[WorkOrderProgress]] | None:
    """One of the customer's machines and all its work orders, or None (also for a machine
    of another customer: the portal cannot tell the two apart)."""
    asset = session.get(Asset, asset_id)
    if asset is None or not scope.sees(asset):
        return None
    orders = session.scalars(
        select(WorkOrder)
        .where(WorkOrder.asset_id == asset_id)
        .order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc())
    ).all()
    [health] = _machines(session, store, now, [asset])
    return health, [work_order_progress(w) for w in orders]
