"""/webhook-subscriptions: who receives which webhook events; admins manage, the desk reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from cloud.api.deps import ContextDep, NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import AdminDep, ServiceDeskDep, page_of
from cloud.api.schemas import Page
from cloud.api.schemas.common import MAX_DB_INT
from cloud.api.schemas.notifications import (
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPublic,
    SubscriptionUpdate,
)
from cloud.api.schemas.queries import PageQuery
from cloud.db.models import WebhookSubscription
from cloud.domain import subscriptions as domain

router = APIRouter(
    prefix="/webhook-subscriptions", tags=["webhooks"], responses=ERROR_RESPONSES
)
SubscriptionId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


def _created(row: WebhookSubscription, secret: str) -> SubscriptionCreated:
    return SubscriptionCreated(**SubscriptionPublic.model_validate(row).model_dump(), secret=secret)


@router.get("", response_model=Page[SubscriptionPublic])
def list_subscriptions(
    session: SessionDep, _: ServiceDeskDep, q: Annotated[PageQuery, Query()]
) -> Page[SubscriptionPublic]:
    """Subscriptions, oldest first (never their secrets)."""
    query = select(WebhookSubscription).order_by(WebhookSubscription.id)
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=SubscriptionPublic)


@router.post("", response_model=SubscriptionCreated, status_code=201)
def create_subscription(
    body: SubscriptionCreate,
    session: SessionDep,
    now: NowDep,
    context: ContextDep,
    principal: AdminDep,
) -> SubscriptionCreated:
    """Subscribe a URL to events from now on; the answer is the only time the secret shows."""
    row, secret = domain.create_subscription(
        session,
        name=body.name,
        url=body.url,
        events=list(body.events),
        active=body.active,
        actor=principal.name,
        now=now,
        refuse_private=context.settings.webhook_refuse_private_addresses,
    )
    return _created(row, secret)


@router.get("/{subscription_id}", response_model=SubscriptionPublic)
def get_subscription(
    subscription_id: SubscriptionId, session: SessionDep, _: ServiceDeskDep
) -> SubscriptionPublic:
    """One subscription."""
    return SubscriptionPublic.model_validate(domain.get_subscription(session, subscription_id))


@router.patch("/{subscription_id}", response_model=SubscriptionPublic)
def update_subscription(
    subscription_id: SubscriptionId,
    body: SubscriptionUpdate,
    session: SessionDep,
    now: NowDep,
    context: ContextDep,
    _: AdminDep,
) -> SubscriptionPublic:
    """Change name, URL, event filter or the active flag."""
    row = domain.update_subscription(
        session,
        subscription_id,
        now=now,
        name=body.name,
        url=body.url,
        events=list(body.events) if body.events is not None else None,
        active=body.active,
        refuse_private=context.settings.webhook_refuse_private_addresses,
    )
    return SubscriptionPublic.model_validate(row)


@router.post("/{subscription_id}/rotate-secret", response_model=SubscriptionCreated)
def rotate_secret(
    subscription_id: SubscriptionId, session: SessionDep, now: NowDep, _: AdminDep
) -> SubscriptionCreated:
    """A new signing secret, shown once; the old one stops signing at once."""
    row, secret = domain.rotate_secret(session, subscription_id, now=now)
    return _created(row, secret)


@router.delete("/{subscription_id}", response_model=SubscriptionPublic)
def delete_subscription(
    subscription_id: SubscriptionId, session: SessionDep, _: AdminDep
) -> SubscriptionPublic:
    """Delete a subscription; its pending deliveries are cancelled, the log stays."""
    row = domain.delete_subscription(session, subscription_id)
    return SubscriptionPublic.model_validate(row)
