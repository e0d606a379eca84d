"""The customer's side of service: report a fault, rate a finished work order.

Both are open to customer tokens (for their own machines; another customer's asset or
work order answers 404) and to the service desk, which may act on a customer's behalf.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from cloud.api.deps import ContextDep, NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import CustomerServiceDep
from cloud.api.routes.work_orders import work_order_public
from cloud.api.schemas.common import MAX_DB_INT
from cloud.api.schemas.customers import FaultReport, WorkOrderRating
from cloud.api.schemas.work_orders import WorkOrderPublic
from cloud.domain import workorders

router = APIRouter(tags=["customer service"], responses=ERROR_RESPONSES)
WorkOrderId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


@router.post("/fault-reports", response_model=WorkOrderPublic, status_code=201)
def report_fault(
    body: FaultReport,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    principal: CustomerServiceDep,
) -> WorkOrderPublic:
    """Report a fault on a machine: opens a work order (source `customer`, P2 until judged,
    response deadline by the customer's tier); 409 while a report on it is still open."""
    asset = principal.scope.asset(session, body.asset_id)
    wo = workorders.report_fault(
        session,
        asset=asset,
        description=body.description,
        actor=principal.name,
        now=now,
        policy=context.policy,
    )
    return work_order_public(wo, now)


@router.post("/work-orders/{work_order_id}/rating", response_model=WorkOrderPublic)
def rate_work_order(
    work_order_id: WorkOrderId,
    body: WorkOrderRating,
    session: SessionDep,
    now: NowDep,
    principal: CustomerServiceDep,
) -> WorkOrderPublic:
    """The customer's satisfaction (1-5) and comment, once the work is done or closed;
    409 before that or when already rated."""
    principal.scope.work_order(session, work_order_id)
    wo = workorders.rate_work_order(
        session,
        work_order_id,
        satisfaction=body.satisfaction,
        feedback=body.feedback,
        actor=principal.name,
        now=now,
    )
    return work_order_public(wo, now)
