"""/work-orders and /escalations: the service desk's side."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from cloud.api.deps import ContextDep, NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import CustomerReaderDep, ServiceDeskDep, page_of
from cloud.api.schemas import (
    EscalationPublic,
    Page,
    WorkOrderCreate,
    WorkOrderEventPublic,
    WorkOrderPublic,
    WorkOrderTransition,
    WorkOrderUpdate,
)
from cloud.api.schemas.common import MAX_DB_INT
from cloud.api.schemas.queries import EscalationQuery, WorkOrderQuery
from cloud.db.models import OPEN_WORK_ORDER_STATES, Escalation, WorkOrder, WorkOrderEvent
from cloud.domain import escalation as escalation_domain
from cloud.domain import workorders

router = APIRouter(tags=["work orders"], responses=ERROR_RESPONSES)
WorkOrderId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
EscalationId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


@router.get("/work-orders", response_model=Page[WorkOrderPublic])
def list_work_orders(
    *,
    session: SessionDep,
    now: NowDep,
    principal: CustomerReaderDep,
    q: Annotated[WorkOrderQuery, Query()],
) -> Page[WorkOrderPublic]:
    """Work orders, most urgent first (priority, then resolution deadline)."""
    query = select(WorkOrder).order_by(WorkOrder.priority, WorkOrder.resolve_by, WorkOrder.id)
    query = principal.scope.restrict(query, WorkOrder.asset_id)
    if q.asset_id is not None:
        query = query.where(WorkOrder.asset_id == q.asset_id)
    if q.state is not None:
        query = query.where(WorkOrder.state == q.state)
    if q.priority is not None:
        query = query.where(WorkOrder.priority == q.priority)
    if q.source is not None:
        query = query.where(WorkOrder.source == q.source)
    if q.failure_mode is not None:
        query = query.where(WorkOrder.failure_mode == q.failure_mode)
    if q.overdue is not None:
        late = WorkOrder.state.in_(OPEN_WORK_ORDER_STATES) & (WorkOrder.resolve_by < now)
        query = query.where(late if q.overdue else ~late)
    if q.created_after is not None:
        query = query.where(WorkOrder.created_at >= q.created_after)
    if q.created_before is not None:
        query = query.where(WorkOrder.created_at < q.created_before)
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=WorkOrderPublic)


@router.post("/work-orders", response_model=WorkOrderPublic, status_code=201)
def create_work_order(
    body: WorkOrderCreate,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    principal: ServiceDeskDep,
) -> WorkOrderPublic:
    """Open a work order by hand; 409 if the asset has an open one for this failure mode."""
    wo = workorders.open_manual(
        session,
        asset_id=body.asset_id,
        failure_mode=body.failure_mode,
        priority=body.priority,
        actor=principal.name,
        now=now,
        title=body.title,
        description=body.description,
        policy=context.policy,
        catalogue=context.catalogue,
    )
    return WorkOrderPublic.model_validate(wo)


@router.get("/work-orders/{work_order_id}", response_model=WorkOrderPublic)
def get_work_order(
    work_order_id: WorkOrderId, session: SessionDep, principal: CustomerReaderDep
) -> WorkOrderPublic:
    """One work order."""
    return WorkOrderPublic.model_validate(principal.scope.work_order(session, work_order_id))


@router.patch("/work-orders/{work_order_id}", response_model=WorkOrderPublic)
def update_work_order(
    *,
    work_order_id: WorkOrderId,
    body: WorkOrderUpdate,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    principal: ServiceDeskDep,
) -> WorkOrderPublic:
    """Edit an open work order; a new priority re-derives its deadlines."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    wo = workorders.update_work_order(
        session,
        work_order_id,
        actor=principal.name,
        now=now,
        changes=changes,
        policy=context.policy,
    )
    return WorkOrderPublic.model_validate(wo)


@router.post("/work-orders/{work_order_id}/transitions", response_model=WorkOrderPublic)
def transition_work_order(
    work_order_id: WorkOrderId,
    body: WorkOrderTransition,
    session: SessionDep,
    now: NowDep,
    principal: ServiceDeskDep,
) -> WorkOrderPublic:
    """Move the work order along open → assigned → in_progress → done → closed / cancelled."""
    wo = workorders.transition(
        session,
        work_order_id,
        body.to_state,
        actor=principal.name,
        now=now,
        assignee=body.assignee,
        note=body.note,
        false_alarm=body.false_alarm,
        failure_confirmed_at=body.failure_confirmed_at,
    )
    return WorkOrderPublic.model_validate(wo)


@router.get("/work-orders/{work_order_id}/history", response_model=list[WorkOrderEventPublic])
def work_order_history(
    work_order_id: WorkOrderId, session: SessionDep, principal: CustomerReaderDep
) -> list[WorkOrderEventPublic]:
    """Every change to the work order, oldest first."""
    principal.scope.work_order(session, work_order_id)
    events = session.scalars(
        select(WorkOrderEvent)
        .where(WorkOrderEvent.work_order_id == work_order_id)
        .order_by(WorkOrderEvent.id)
    )
    return [WorkOrderEventPublic.model_validate(e) for e in events]


@router.get("/escalations", response_model=Page[EscalationPublic])
def list_escalations(
    session: SessionDep, _: ServiceDeskDep, q: Annotated[EscalationQuery, Query()]
) -> Page[EscalationPublic]:
    """Missed deadlines, newest first."""
    query = select(Escalation).order_by(Escalation.raised_at.desc(), Escalation.id.desc())
    if q.work_order_id is not None:
        query = query.where(Escalation.work_order_id == q.work_order_id)
    if q.acknowledged is not None:
        column = Escalation.acknowledged_at
        query = query.where(column.is_not(None) if q.acknowledged else column.is_(None))
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=EscalationPublic)


@router.post("/escalations/{escalation_id}/acknowledge", response_model=EscalationPublic)
def acknowledge_escalation(
    escalation_id: EscalationId, session: SessionDep, now: NowDep, principal: ServiceDeskDep
) -> EscalationPublic:
    """Take an escalation on."""
    escalation = escalation_domain.acknowledge_escalation(
        session, escalation_id, actor=principal.name, now=now
    )
    return EscalationPublic.model_validate(escalation)
