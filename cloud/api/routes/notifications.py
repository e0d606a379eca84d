"""/notification-recipients and /notifications/emails: who is e-mailed, and what was sent."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from cloud.api.deps import NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import AdminDep, ServiceDeskDep, page_of
from cloud.api.schemas import Page
from cloud.api.schemas.common import MAX_DB_INT
from cloud.api.schemas.notifications import (
    EmailDeliveryPublic,
    EmailDeliveryQuery,
    RecipientCreate,
    RecipientPublic,
)
from cloud.api.schemas.queries import PageQuery
from cloud.db.models import EmailDelivery, NotificationRecipient
from cloud.domain import notifications as domain

router = APIRouter(tags=["notifications"], responses=ERROR_RESPONSES)
RecipientId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


@router.get("/notification-recipients", response_model=Page[RecipientPublic])
def list_recipients(
    session: SessionDep, _: ServiceDeskDep, q: Annotated[PageQuery, Query()]
) -> Page[RecipientPublic]:
    """E-mail recipients by role."""
    query = select(NotificationRecipient).order_by(
        NotificationRecipient.role, NotificationRecipient.id
    )
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=RecipientPublic)


@router.post("/notification-recipients", response_model=RecipientPublic, status_code=201)
def add_recipient(
    body: RecipientCreate, session: SessionDep, now: NowDep, _: AdminDep
) -> RecipientPublic:
    """Send a role's notifications to one more address."""
    row = domain.add_recipient(session, role=body.role, email=body.email, name=body.name, now=now)
    return RecipientPublic.model_validate(row)


@router.delete("/notification-recipients/{recipient_id}", response_model=RecipientPublic)
def remove_recipient(
    recipient_id: RecipientId, session: SessionDep, _: AdminDep
) -> RecipientPublic:
    """Stop e-mailing an address for a role."""
    return RecipientPublic.model_validate(domain.remove_recipient(session, recipient_id))


@router.get("/notifications/emails", response_model=Page[EmailDeliveryPublic])
def list_emails(
    session: SessionDep, _: ServiceDeskDep, q: Annotated[EmailDeliveryQuery, Query()]
) -> Page[EmailDeliveryPublic]:
    """The e-mail outbox, newest first: attempts and last error."""
    query = select(EmailDelivery).order_by(EmailDelivery.id.desc())
    if q.state is not None:
        query = query.where(EmailDelivery.state == q.state)
    if q.work_order_id is not None:
        query = query.where(EmailDelivery.work_order_id == q.work_order_id)
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=EmailDeliveryPublic)
