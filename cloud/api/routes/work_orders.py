"""/work-orders and /escalations: the service desk's side."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from cloud.api.deps import ContextDep, NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import CustomerReaderDep, ReaderDep, ServiceDeskDep, page_of
from cloud.api.routes.technicians import suggestion_public
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
from cloud.api.schemas.dispatch import SuggestionPublic
from cloud.api.schemas.queries import EscalationQuery, WorkOrderQuery
from cloud.api.schemas.work_orders import (
    OutcomeInput,
    PartNeedPublic,
    WorkOrderAssign,
    WorkOrderComplete,
)
from cloud.db.models import OPEN_WORK_ORDER_STATES, Escalation, WorkOrder, WorkOrderEvent
from cloud.domain import escalation as escalation_domain
from cloud.domain import parts as parts_domain
from cloud.domain import technicians as technicians_domain
from cloud.domain import workorders

router = APIRouter(tags=["work orders"], responses=ERROR_RESPONSES)
WorkOrderId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
EscalationId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
# Fields of the public schema computed here rather than read from the row.
_COMPUTED = frozenset({"parts_used", "next_states", "sla_response", "sla_resolution"})


def work_order_public(wo: WorkOrder, now: datetime) -> WorkOrderPublic:
    """The work order with its parts used, next states and deadline outcomes."""
    data: dict[str, Any] = {
        name: getattr(wo, name) for name in WorkOrderPublic.model_fields if name not in _COMPUTED
    }
    used: dict[str, int] = {}
    for row in wo.parts:
        if row.used:
            used[row.part_id] = used.get(row.part_id, 0) + row.used
    data.update(
        parts_used=used,
        next_states=sorted(workorders.TRANSITIONS.get(wo.state, frozenset())),
        sla_response=workorders.response_outcome(wo, now),
        sla_resolution=workorders.resolution_outcome(wo, now),
    )
    return WorkOrderPublic.model_validate(data)


def _outcome(body: OutcomeInput) -> workorders.Outcome:
    used: dict[str, int] = {}
    for use in body.parts_used:
        used[use.part_id] = used.get(use.part_id, 0) + use.quantity
    return workorders.Outcome(
        cause_found=body.cause_found,
        action_taken=body.action_taken,
        parts_used=used,
        downtime_h=body.downtime_h,
        first_time_fix=body.first_time_fix,
    )


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
    if q.asset_id:
        query = query.where(WorkOrder.asset_id.in_(q.asset_id))
    if q.state:
        query = query.where(WorkOrder.state.in_(q.state))
    if q.active is not None:
        is_open = WorkOrder.state.in_(OPEN_WORK_ORDER_STATES)
        query = query.where(is_open if q.active else ~is_open)
    if q.priority:
        query = query.where(WorkOrder.priority.in_(q.priority))
    if q.source:
        query = query.where(WorkOrder.source.in_(q.source))
    if q.failure_mode:
        query = query.where(WorkOrder.failure_mode.in_(q.failure_mode))
    if q.technician_id:
        query = query.where(WorkOrder.technician_id.in_(q.technician_id))
    if q.overdue is not None:
        late = WorkOrder.state.in_(OPEN_WORK_ORDER_STATES) & (WorkOrder.resolve_by < now)
        query = query.where(late if q.overdue else ~late)
    if q.created_after is not None:
        query = query.where(WorkOrder.created_at >= q.created_after)
    if q.created_before is not None:
        query = query.where(WorkOrder.created_at < q.created_before)
    return page_of(
        session, query, limit=q.limit, offset=q.offset, schema=WorkOrderPublic,
        convert=lambda wo: work_order_public(wo, now),
    )


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
    return work_order_public(wo, now)


@router.get("/work-orders/{work_order_id}", response_model=WorkOrderPublic)
def get_work_order(
    work_order_id: WorkOrderId, session: SessionDep, now: NowDep, principal: CustomerReaderDep
) -> WorkOrderPublic:
    """One work order."""
    return work_order_public(principal.scope.work_order(session, work_order_id), now)


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
    """Edit a work order not yet dispatched (open or accepted; 409 otherwise); a new
    priority re-derives its deadlines."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    wo = workorders.update_work_order(
        session,
        work_order_id,
        actor=principal.name,
        now=now,
        changes=changes,
        policy=context.policy,
    )
    return work_order_public(wo, now)


@router.post("/work-orders/{work_order_id}/transitions", response_model=WorkOrderPublic)
def transition_work_order(
    *,
    work_order_id: WorkOrderId,
    body: WorkOrderTransition,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    principal: ServiceDeskDep,
) -> WorkOrderPublic:
    """Move the work order along open → accepted → assigned → in_progress → done →
    follow_up → closed, or cancel it; 409 with the allowed states if the move is not one."""
    wo = workorders.transition(
        session,
        work_order_id,
        body.to_state,
        actor=principal.name,
        now=now,
        assignee=body.assignee,
        technician_id=body.technician_id,
        note=body.note,
        false_alarm=body.false_alarm,
        failure_confirmed_at=body.failure_confirmed_at,
        outcome=_outcome(body.outcome) if body.outcome is not None else None,
        follow_up_at=body.follow_up_at,
        catalogue=context.catalogue,
    )
    return work_order_public(wo, now)


@router.post("/work-orders/{work_order_id}/assign", response_model=WorkOrderPublic)
def assign_work_order(
    *,
    work_order_id: WorkOrderId,
    body: WorkOrderAssign,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    principal: ServiceDeskDep,
) -> WorkOrderPublic:
    """Assign the work order to a technician, or reassign it (kept in the history)."""
    wo = workorders.assign(
        session, work_order_id, body.technician_id, actor=principal.name, now=now,
        note=body.note, catalogue=context.catalogue,
    )
    return work_order_public(wo, now)


@router.post("/work-orders/{work_order_id}/complete", response_model=WorkOrderPublic)
def complete_work_order(
    work_order_id: WorkOrderId,
    body: WorkOrderComplete,
    session: SessionDep,
    now: NowDep,
    principal: ServiceDeskDep,
) -> WorkOrderPublic:
    """in_progress → done with the outcome: cause, action, parts used, downtime, first-time fix."""
    wo = workorders.transition(
        session, work_order_id, "done", actor=principal.name, now=now, note=body.note,
        outcome=_outcome(body),
    )
    return work_order_public(wo, now)


@router.get(
    "/work-orders/{work_order_id}/suggested-technicians", response_model=list[SuggestionPublic]
)
def suggested_technicians(
    work_order_id: WorkOrderId,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    _: ServiceDeskDep,
) -> list[SuggestionPublic]:
    """Active technicians for this work order, best first, each with its score's reasons."""
    wo = workorders.get_work_order(session, work_order_id)
    ranked = technicians_domain.suggest_technicians(
        session, wo, now=now, catalogue=context.catalogue
    )
    return [suggestion_public(s) for s in ranked]


@router.get("/work-orders/{work_order_id}/parts", response_model=list[PartNeedPublic])
def work_order_parts(
    work_order_id: WorkOrderId, session: SessionDep, context: ContextDep, _: ReaderDep
) -> list[PartNeedPublic]:
    """The parts the work order needs: reserved, short, used, released, not yet reserved."""
    wo = workorders.get_work_order(session, work_order_id)
    return [
        PartNeedPublic.model_validate(n)
        for n in parts_domain.parts_of(session, wo, context.catalogue)
    ]


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
    if q.work_order_id:
        query = query.where(Escalation.work_order_id.in_(q.work_order_id))
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
