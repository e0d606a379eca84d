"""Maintenance plans: every N running hours and/or every calendar interval, a work order.

Calendar schedules miss how hard a machine works; operating hours track wear better, and
a machine that barely runs still needs its yearly inspection: a plan may give both, and
whichever falls due first opens the job and restarts both counts. A plan is for one
asset or for every asset of a kind. Each due point that opened a work order is a
`MaintenanceDue` row, unique per (plan, asset, seq), so concurrent or repeated checks
open it once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.db.models import Asset, MaintenanceDue, MaintenancePlan, WorkOrder
from cloud.domain.catalogue import FailureModeCatalogue
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidInputError, NotFoundError
from cloud.domain.policy import ServiceLevelPolicy
from cloud.domain.vocabulary import ASSET_KINDS, PRIORITIES, Priority
from cloud.domain.workorders import create_work_order, find_open_work_order

__all__ = [
    "Covered",
    "DueState",
    "add_running_hours",
    "check_maintenance_plans",
    "create_plan",
    "delete_plan",
    "due_state",
    "get_plan",
    "last_dues",
    "update_plan",
]

DueReason = Literal["hours", "calendar"]
_PLAN_FIELDS = frozenset({
    "name", "task", "interval_hours", "interval_days", "priority", "tasks", "parts", "active",
})


def _check(plan: MaintenancePlan) -> None:
    if (plan.asset_id is None) == (plan.asset_kind is None):
        raise InvalidInputError("a plan is for one asset (asset_id) or one kind (asset_kind)")
    if plan.asset_kind is not None and plan.asset_kind not in ASSET_KINDS:
        raise InvalidInputError(f"unknown asset kind {plan.asset_kind!r}: one of {ASSET_KINDS}")
    if plan.interval_hours is None and plan.interval_days is None:
        raise InvalidInputError("a plan needs interval_hours, interval_days or both")
    for name in ("interval_hours", "interval_days"):
        value = getattr(plan, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InvalidInputError(f"{name} must be positive")
    if plan.priority not in PRIORITIES:
        raise InvalidInputError(f"priority must be one of {PRIORITIES}")


def create_plan(
    session: Session,
    *,
    asset_id: str | None = None,
    asset_kind: str | None = None,
    interval_hours: float | None = None,
    interval_days: float | None = None,
    name: str = "",
    task: str = "scheduled_service",
    priority: Priority = "P3",
    tasks: Sequence[str] = (),
    parts: Sequence[str] = (),
    now: datetime,
) -> MaintenancePlan:
    """A plan counted from now: the asset's current running hours and today's date."""
    now = require_utc(now)
    start_hours = 0.0
    if asset_id is not None:
        asset = session.get(Asset, asset_id)
        if asset is None:
            raise NotFoundError(f"asset {asset_id} not found")
        start_hours = asset.running_hours
    every = " / ".join(
        part for part in (
            f"{interval_hours:g} h" if interval_hours is not None else "",
            f"{interval_days:g} days" if interval_days is not None else "",
        ) if part
    )
    plan = MaintenancePlan(
        asset_id=asset_id,
        asset_kind=asset_kind,
        name=name or f"Service every {every}",
        task=task,
        interval_hours=interval_hours,
        interval_days=interval_days,
        priority=priority,
        tasks=list(tasks),
        parts=list(parts),
        last_done_hours=start_hours,
        active=True,
        created_at=now,
    )
    _check(plan)
    session.add(plan)
    session.flush()
    return plan


def get_plan(session: Session, plan_id: int) -> MaintenancePlan:
    plan = session.get(MaintenancePlan, plan_id)
    if plan is None:
        raise NotFoundError(f"maintenance plan {plan_id} not found")
    return plan


def update_plan(session: Session, plan_id: int, changes: dict[str, Any]) -> MaintenancePlan:
    """Change a plan's intervals, name, priority, tasks, parts or `active`; checked as a whole.

    Due points already passed stay as they are; the next one uses the new intervals.
    """
    plan = get_plan(session, plan_id)
    unknown = set(changes) - _PLAN_FIELDS
    if unknown:
        raise InvalidInputError(f"cannot change {', '.join(sorted(unknown))} of a plan")
    for key, value in changes.items():
        setattr(plan, key, list(value) if key in ("tasks", "parts") else value)
    _check(plan)
    session.flush()
    return plan


def delete_plan(session: Session, plan_id: int) -> None:
    """Remove a plan and its due history; work orders it opened stay."""
    session.delete(get_plan(session, plan_id))
    session.flush()


def add_running_hours(session: Session, asset_id: str, hours: float) -> Asset:
    """Add operating hours without history (seeding, tests); negative values are refused.

    People adjust with `cloud.domain.hour_meter.adjust_running_hours`, which keeps history.
    """
    if hours < 0:
        raise InvalidInputError("running hours only go up")
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFoundError(f"asset {asset_id} not found")
    asset.running_hours += hours
    session.flush()
    return asset


class Covered:
    """Which of a set of assets each plan covers: its asset, or every asset of its kind."""

    def __init__(self, assets: Sequence[Asset]) -> None:
        self._by_id = {a.id: a for a in assets}
        self._by_kind: dict[str, list[Asset]] = {}
        for asset in assets:
            self._by_kind.setdefault(asset.kind, []).append(asset)

    def __call__(self, plan: MaintenancePlan) -> list[Asset]:
        if plan.asset_id is not None:
            asset = self._by_id.get(plan.asset_id)
            return [] if asset is None else [asset]
        return self._by_kind.get(plan.asset_kind or "", [])


@dataclass(frozen=True)
class DueState:
    """Where a plan stands on one asset: the counts it runs from and what falls due next."""

    seq: int  # due points passed so far
    base_hours: float
    base_at: datetime
    due_hours: float | None  # running hours at which the next one falls due
    due_at: datetime | None  # calendar date at which it falls due


def last_dues(
    session: Session, plans: Sequence[MaintenancePlan]
) -> dict[tuple[int, str], MaintenanceDue]:
    """The newest due row of each (plan, asset) among `plans`, in one query."""
    ids = [p.id for p in plans]
    if not ids:
        return {}
    newest = (
        select(MaintenanceDue.plan_id, MaintenanceDue.asset_id,
               func.max(MaintenanceDue.seq).label("seq"))
        .where(MaintenanceDue.plan_id.in_(ids))
        .group_by(MaintenanceDue.plan_id, MaintenanceDue.asset_id)
        .subquery()
    )
    rows = session.scalars(
        select(MaintenanceDue).join(
            newest,
            (MaintenanceDue.plan_id == newest.c.plan_id)
            & (MaintenanceDue.asset_id == newest.c.asset_id)
            & (MaintenanceDue.seq == newest.c.seq),
        )
    )
    return {(r.plan_id, r.asset_id): r for r in rows}


def due_state(plan: MaintenancePlan, asset: Asset, last: MaintenanceDue | None) -> DueState:
    """The next due point from the last one passed, else from the plan's start.

    A plan for one asset starts at the asset's hours when the plan was made; a plan for a
    kind starts each asset at zero hours (due at N, 2N, ... of its counter). Both count
    calendar days from the plan's creation.
    """
    if last is not None:
        seq, base_hours, base_at = last.seq, last.base_hours, last.base_at
    elif plan.asset_id is not None:
        seq, base_hours, base_at = 0, plan.last_done_hours, plan.created_at
    else:
        seq, base_hours, base_at = 0, 0.0, plan.created_at
    return DueState(
        seq=seq,
        base_hours=base_hours,
        base_at=base_at,
        due_hours=None if plan.interval_hours is None else base_hours + plan.interval_hours,
        due_at=None if plan.interval_days is None
        else base_at + timedelta(days=plan.interval_days),
    )


def _fallen_due(
    plan: MaintenancePlan, asset: Asset, state: DueState, now: datetime
) -> tuple[DueReason, float, datetime] | None:
    """(reason, next base hours, next base time) if a due point has passed, else None.

    The next count starts where this one fell due, not when it was noticed, so the
    schedule does not drift with late checks; a machine that ran several intervals at
    once gets one job, and the count skips to the last interval passed.
    """
    if state.due_hours is not None and plan.interval_hours is not None and (
        asset.running_hours >= state.due_hours
    ):
        passed = (asset.running_hours - state.base_hours) // plan.interval_hours
        return "hours", state.base_hours + passed * plan.interval_hours, now
    if state.due_at is not None and plan.interval_days is not None and now >= state.due_at:
        step = timedelta(days=plan.interval_days)
        passed_days = (now - state.base_at) // step
        return "calendar", asset.running_hours, state.base_at + passed_days * step
    return None


def check_maintenance_plans(
    session: Session,
    now: datetime,
    *,
    policy: ServiceLevelPolicy | None = None,
    catalogue: FailureModeCatalogue | None = None,
) -> list[WorkOrder]:
    """Open a work order for each (plan, asset) whose due point has passed; idempotent.

    While the previous job of the same task on the asset is still open, the next one
    waits (one open work order per asset and failure mode).
    """
    now = require_utc(now)
    plans = list(session.scalars(
        select(MaintenancePlan).where(MaintenancePlan.active.is_(True))
        .order_by(MaintenancePlan.id)
    ))
    last = last_dues(session, plans)
    kinds = {p.asset_kind for p in plans if p.asset_kind is not None}
    ids = {p.asset_id for p in plans if p.asset_id is not None}
    assets = list(session.scalars(
        select(Asset).where(or_(Asset.id.in_(ids), Asset.kind.in_(kinds))).order_by(Asset.id)
    )) if plans else []
    opened: list[WorkOrder] = []
    covered = Covered(assets)
    for plan in plans:
        for asset in covered(plan):
            state = due_state(plan, asset, last.get((plan.id, asset.id)))
            fallen = _fallen_due(plan, asset, state, now)
            if fallen is None or find_open_work_order(session, asset.id, plan.task) is not None:
                continue
            wo = _open(session, plan, asset, state=state, fallen=fallen, now=now,
                       policy=policy, catalogue=catalogue)
            if wo is not None:
                opened.append(wo)
    session.flush()
    return opened


def _open(
    session: Session,
    plan: MaintenancePlan,
    asset: Asset,
    *,
    state: DueState,
    fallen: tuple[DueReason, float, datetime],
    now: datetime,
    policy: ServiceLevelPolicy | None,
    catalogue: FailureModeCatalogue | None,
) -> WorkOrder | None:
    """The work order of one due point and its row, together or not at all."""
    reason, base_hours, base_at = fallen
    if reason == "hours":
        why = (f"running hours {asset.running_hours:.0f} h reached plan '{plan.name}' "
               f"({plan.interval_hours:g} h since {state.base_hours:.0f} h)")
    else:
        why = (f"calendar: plan '{plan.name}' due on {state.due_at:%Y-%m-%d} "
               f"(every {plan.interval_days:g} days)")
    try:
        with session.begin_nested():
            due = MaintenanceDue(
                plan_id=plan.id, asset_id=asset.id, seq=state.seq + 1, reason=reason,
                base_hours=base_hours, base_at=base_at, hours_at_open=asset.running_hours,
                opened_at=now,
            )
            session.add(due)
            session.flush()
            wo = create_work_order(
                session,
                asset=asset,
                failure_mode=plan.task,
                priority=plan.priority,  # type: ignore[arg-type]  # checked by _check
                priority_reason=why,
                source="reminder",
                now=now,
                actor="system",
                title=f"{plan.name} on {asset.name or asset.id}",
                policy=policy,
                catalogue=catalogue,
                actions=plan.tasks or None,
                parts=plan.parts or None,
            )
            session.flush()
            due.work_order_id = wo.id
            if plan.asset_id is not None:
                plan.last_done_hours = base_hours
                plan.last_work_order_id = wo.id
            session.flush()
    except IntegrityError:
        # Another process opened this due point (or the job) first: theirs stands.
        return None
    return wo
