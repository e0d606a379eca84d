"""The maintenance calendar: when each plan falls due next on each asset it covers.

An hour-based due point becomes a date through the asset's recent running-hours rate
(hours per day, kept by the hour meter); a calendar one is a date already. The earlier
of the two is the date the job is expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cloud.db.models import OPEN_WORK_ORDER_STATES, Asset, MaintenancePlan, Site, WorkOrder
from cloud.domain.clock import require_utc
from cloud.domain.reminders import Covered, due_state, last_dues

__all__ = ["PlannedService", "planned_services"]


@dataclass(frozen=True)
class PlannedService:
    """One plan on one asset: what is due when, and for whom."""

    plan_id: int
    plan_name: str
    task: str
    priority: str
    asset_id: str
    asset_name: str
    customer_id: str | None
    customer_name: str | None
    site_id: str | None
    site_name: str | None
    site_timezone: str
    running_hours: float
    hours_per_day: float | None
    due_hours: float | None
    due_by_hours_at: datetime | None  # estimated from the running-hours rate
    due_at: datetime | None  # the calendar date
    expected_at: datetime | None  # the earlier of the two
    open_work_order_id: int | None
    overdue: bool  # a due point has passed and no job is open for it yet

    @property
    def hours_left(self) -> float | None:
        return None if self.due_hours is None else self.due_hours - self.running_hours


def _estimate(now: datetime, hours_left: float | None, rate: float | None) -> datetime | None:
    if hours_left is None:
        return None
    if hours_left <= 0:
        return now
    if rate is None or rate <= 0:
        return None  # not running lately: no date to give
    return now + timedelta(days=hours_left / rate)


def planned_services(
    session: Session,
    now: datetime,
    *,
    customer_id: str | None = None,
    site_id: str | None = None,
) -> list[PlannedService]:
    """Every active plan on every asset it covers, soonest first (no date last)."""
    now = require_utc(now)
    plans = list(session.scalars(
        select(MaintenancePlan).where(MaintenancePlan.active.is_(True))
        .order_by(MaintenancePlan.id)
    ))
    if not plans:
        return []
    query = select(Asset).options(selectinload(Asset.site).selectinload(Site.customer))
    if site_id is not None:
        query = query.where(Asset.site_id == site_id)
    if customer_id is not None:
        query = query.join(Site, Site.id == Asset.site_id).where(Site.customer_id == customer_id)
    assets = list(session.scalars(query.order_by(Asset.id)))
    last = last_dues(session, plans)
    open_jobs = {
        (wo.asset_id, wo.failure_mode): wo.id
        for wo in session.scalars(
            select(WorkOrder).where(WorkOrder.state.in_(OPEN_WORK_ORDER_STATES),
                                    WorkOrder.source == "reminder")
        )
    }
    out: list[PlannedService] = []
    covered = Covered(assets)
    for plan in plans:
        for asset in covered(plan):
            state = due_state(plan, asset, last.get((plan.id, asset.id)))
            hours_left = None if state.due_hours is None else state.due_hours - asset.running_hours
            by_hours = _estimate(now, hours_left, asset.running_hours_per_day)
            dates = [d for d in (by_hours, state.due_at) if d is not None]
            site, customer = asset.site, asset.customer
            out.append(PlannedService(
                plan_id=plan.id, plan_name=plan.name, task=plan.task, priority=plan.priority,
                asset_id=asset.id, asset_name=asset.name or asset.id,
                customer_id=None if customer is None else customer.id,
                customer_name=None if customer is None else customer.name,
                site_id=None if site is None else site.id,
                site_name=None if site is None else site.name,
                site_timezone="UTC" if site is None else site.timezone,
                running_hours=asset.running_hours,
                hours_per_day=asset.running_hours_per_day,
                due_hours=state.due_hours, due_by_hours_at=by_hours, due_at=state.due_at,
                expected_at=min(dates) if dates else None,
                open_work_order_id=open_jobs.get((asset.id, plan.task)),
                overdue=open_jobs.get((asset.id, plan.task)) is None and bool(dates)
                and min(dates) <= now,
            ))
    far = datetime.max.replace(tzinfo=now.tzinfo)
    out.sort(key=lambda s: (s.expected_at or far, s.asset_id, s.plan_id))
    return out
