"""/maintenance-plans, /maintenance-calendar and an asset's running-hours adjustments.

Plans are made and changed by the service desk; engineers and the service desk read them
and the calendar. `/assets/{id}/maintenance-plans` (in assets.py) stays for one asset.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select

from cloud.api.deps import NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import ReaderDep, ServiceDeskDep, page_of
from cloud.api.schemas.common import MAX_DB_INT, Page
from cloud.api.schemas.fleet import MaintenancePlanPublic
from cloud.api.schemas.maintenance import (
    MaintenanceCalendarQuery,
    MaintenancePlanFleetCreate,
    MaintenancePlanQuery,
    MaintenancePlanUpdate,
    PlannedServicePublic,
    RunningHoursAdjustmentPublic,
)
from cloud.api.schemas.queries import PageQuery
from cloud.db.models import Asset, MaintenancePlan, RunningHoursAdjustment
from cloud.domain import reminders
from cloud.domain.errors import NotFoundError
from cloud.domain.maintenance_calendar import planned_services
from ironwatch.ids import ID_PATTERN

router = APIRouter(tags=["maintenance"], responses=ERROR_RESPONSES)
PlanId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
AssetId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.get("/maintenance-plans", response_model=Page[MaintenancePlanPublic])
def list_plans(
    query: Annotated[MaintenancePlanQuery, Query()], session: SessionDep, _: ReaderDep
) -> Page[MaintenancePlanPublic]:
    """Every maintenance plan, filtered by asset, kind or whether it is active."""
    stmt = select(MaintenancePlan).order_by(MaintenancePlan.id)
    if query.asset_id is not None:
        stmt = stmt.where(MaintenancePlan.asset_id == query.asset_id)
    if query.asset_kind is not None:
        stmt = stmt.where(MaintenancePlan.asset_kind == query.asset_kind)
    if query.active is not None:
        stmt = stmt.where(MaintenancePlan.active.is_(query.active))
    return page_of(session, stmt, limit=query.limit, offset=query.offset,
                   schema=MaintenancePlanPublic)


@router.post("/maintenance-plans", response_model=MaintenancePlanPublic, status_code=201)
def create_plan(
    body: MaintenancePlanFleetCreate, session: SessionDep, now: NowDep, _: ServiceDeskDep
) -> MaintenancePlanPublic:
    """A plan for one asset or a kind: every N running hours and/or N days, whichever first."""
    plan = reminders.create_plan(
        session, asset_id=body.asset_id, asset_kind=body.asset_kind,
        interval_hours=body.interval_hours, interval_days=body.interval_days,
        name=body.name, task=body.task, priority=body.priority, tasks=body.tasks,
        parts=body.parts, now=now,
    )
    return MaintenancePlanPublic.model_validate(plan)


@router.get("/maintenance-plans/{plan_id}", response_model=MaintenancePlanPublic)
def get_plan(plan_id: PlanId, session: SessionDep, _: ReaderDep) -> MaintenancePlanPublic:
    return MaintenancePlanPublic.model_validate(reminders.get_plan(session, plan_id))


@router.patch("/maintenance-plans/{plan_id}", response_model=MaintenancePlanPublic)
def update_plan(
    plan_id: PlanId, body: MaintenancePlanUpdate, session: SessionDep, _: ServiceDeskDep
) -> MaintenancePlanPublic:
    """Change a plan; `null` for one interval drops it (one must remain)."""
    changes = body.model_dump(exclude_unset=True)
    for key in ("name", "priority", "tasks", "parts", "active"):
        if key in changes and changes[key] is None:
            del changes[key]  # these have no "none" value
    return MaintenancePlanPublic.model_validate(reminders.update_plan(session, plan_id, changes))


@router.delete("/maintenance-plans/{plan_id}", status_code=204)
def delete_plan(plan_id: PlanId, session: SessionDep, _: ServiceDeskDep) -> Response:
    """Remove a plan; the work orders it opened stay."""
    reminders.delete_plan(session, plan_id)
    return Response(status_code=204)


@router.get("/maintenance-calendar", response_model=Page[PlannedServicePublic])
def maintenance_calendar(
    query: Annotated[MaintenanceCalendarQuery, Query()],
    session: SessionDep,
    now: NowDep,
    _: ReaderDep,
) -> Page[PlannedServicePublic]:
    """What falls due next, soonest first: per plan and asset, by hours and by calendar."""
    planned = planned_services(session, now, customer_id=query.customer_id,
                               site_id=query.site_id)
    items = planned[query.offset : query.offset + query.limit]
    return Page[PlannedServicePublic](
        items=[PlannedServicePublic.model_validate(p) for p in items],
        total=len(planned), limit=query.limit, offset=query.offset,
    )


@router.get(
    "/assets/{asset_id}/running-hours/adjustments",
    response_model=Page[RunningHoursAdjustmentPublic],
)
def running_hours_adjustments(
    asset_id: AssetId, query: Annotated[PageQuery, Query()], session: SessionDep, _: ReaderDep
) -> Page[RunningHoursAdjustmentPublic]:
    """The hand-typed corrections of an asset's running hours, newest first."""
    if session.get(Asset, asset_id) is None:
        raise NotFoundError(f"asset {asset_id} not found")
    stmt = (
        select(RunningHoursAdjustment)
        .where(RunningHoursAdjustment.asset_id == asset_id)
        .order_by(RunningHoursAdjustment.id.desc())
    )
    return page_of(session, stmt, limit=query.limit, offset=query.offset,
                   schema=RunningHoursAdjustmentPublic)
