"""/webhooks/deliveries: the outbox as a delivery log, and a manual retry for failed ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from cloud.api.deps import NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import AdminDep, ServiceDeskDep, page_of
from cloud.api.schemas import Page, WebhookDeliveryPublic
from cloud.api.schemas.common import MAX_DB_INT
from cloud.api.schemas.queries import DeliveryQuery
from cloud.db.models import WebhookDelivery
from cloud.domain.errors import InvalidTransitionError, NotFoundError

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)
DeliveryId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


def _get(session: SessionDep, delivery_id: int) -> WebhookDelivery:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFoundError(f"webhook delivery {delivery_id} not found")
    return delivery


@router.get("/deliveries", response_model=Page[WebhookDeliveryPublic])
def list_deliveries(
    session: SessionDep, _: ServiceDeskDep, q: Annotated[DeliveryQuery, Query()]
) -> Page[WebhookDeliveryPublic]:
    """Deliveries, newest first: attempts, last status code and last error."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc())
    if q.state:
        query = query.where(WebhookDelivery.state.in_(q.state))
    if q.work_order_id:
        query = query.where(WebhookDelivery.work_order_id.in_(q.work_order_id))
    if q.subscription_id:
        query = query.where(WebhookDelivery.subscription_id.in_(q.subscription_id))
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=WebhookDeliveryPublic)


@router.get("/deliveries/{delivery_id}", response_model=WebhookDeliveryPublic)
def get_delivery(
    delivery_id: DeliveryId, session: SessionDep, _: ServiceDeskDep
) -> WebhookDeliveryPublic:
    """One delivery."""
    return WebhookDeliveryPublic.model_validate(_get(session, delivery_id))


@router.post("/deliveries/{delivery_id}/retry", response_model=WebhookDeliveryPublic)
def retry_delivery(
    delivery_id: DeliveryId, session: SessionDep, now: NowDep, _: AdminDep
) -> WebhookDeliveryPublic:
    """Send a failed delivery again (after fixing the receiver or the secret)."""
    delivery = _get(session, delivery_id)
    if delivery.state != "failed":
        raise InvalidTransitionError(
            f"delivery {delivery_id} is {delivery.state}; only failed ones can be retried"
        )
    delivery.state = "pending"
    delivery.next_attempt_at = now
    session.flush()
    return WebhookDeliveryPublic.model_validate(delivery)
