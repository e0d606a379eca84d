"""Maintenance reminders by running hours: every `interval_hours` of operation, a P3 job.

Calendar schedules miss how hard a machine works; operating hours track wear better.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import Asset, MaintenancePlan, WorkOrder
from cloud.domain.catalogue import FailureModeCatalogue
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidInputError, NotFoundError
from cloud.domain.policy import ServiceLevelPolicy
from cloud.domain.workorders import create_work_order, find_open_work_order

__all__ = ["add_running_hours", "check_maintenance_plans", "create_plan"]


def create_plan(
    session: Session,
    *,
    asset_id: str,
    interval_hours: float,
    name: str = "",
    task: str = "scheduled_service",
    now: datetime,
) -> MaintenancePlan:
    """A reminder every `interval_hours` counted from the asset's current running hours."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFoundError(f"asset {asset_id} not found")
    if not interval_hours > 0:
        raise InvalidInputError("interval_hours must be positive")
    plan = MaintenancePlan(
        asset_id=asset_id,
        name=name or f"Service every {interval_hours:g} h",
        task=task,
        interval_hours=interval_hours,
        last_done_hours=asset.running_hours,
        active=True,
        created_at=require_utc(now),
    )
    session.add(plan)
    session.flush()
    return plan


def add_running_hours(session: Session, asset_id: str, hours: float) -> Asset:
    """Add operating hours (e.g. from gateway counters); negative values are refused."""
    if hours < 0:
        raise InvalidInputError("running hours only go up")
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFoundError(f"asset {asset_id} not found")
    asset.running_hours += hours
    session.flush()
    return asset


def check_maintenance_plans(
    session: Session,
    now: datetime,
    *,
    policy: ServiceLevelPolicy | None = None,
    catalogue: FailureModeCatalogue | None = None,
) -> list[WorkOrder]:
    """Open a P3 work order for each plan whose interval has run out; idempotent."""
    now = require_utc(now)
    opened: list[WorkOrder] = []
    rows = session.execute(
        select(MaintenancePlan, Asset)
        .join(Asset, Asset.id == MaintenancePlan.asset_id)
        .where(MaintenancePlan.active.is_(True))
    ).all()
    for plan, asset in rows:
        if asset.running_hours - plan.last_done_hours < plan.interval_hours:
            continue
        if find_open_work_order(session, asset.id, plan.task) is not None:
            # The previous reminder is still open: one job, not a pile of them.
            continue
        wo = create_work_order(
            session,
            asset=asset,
            failure_mode=plan.task,
            priority="P3",
            priority_reason=(
                f"running hours {asset.running_hours:.0f} h reached plan "
                f"'{plan.name}' ({plan.interval_hours:g} h since {plan.last_done_hours:.0f} h)"
            ),
            source="reminder",
            now=now,
            actor="system",
            title=f"{plan.name} on {asset.name or asset.id}",
            policy=policy,
            catalogue=catalogue,
        )
        session.flush()
        # Counted from when it fell due, so the schedule does not drift with late checks.
        plan.last_done_hours += plan.interval_hours * (
            (asset.running_hours - plan.last_done_hours) // plan.interval_hours
        )
        plan.last_work_order_id = wo.id
        opened.append(wo)
    session.flush()
    return opened
