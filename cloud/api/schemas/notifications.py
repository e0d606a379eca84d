"""Schemas for webhook subscriptions, e-mail recipients and the e-mail log."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from cloud.api.schemas.common import MAX_DB_INT, InputModel, PublicModel, UtcTime
from cloud.api.schemas.queries import PageQuery
from cloud.domain.notifications import EMAIL_PATTERN, ROLE_PATTERN

__all__ = [
    "EmailDeliveryPublic",
    "EmailDeliveryQuery",
    "RecipientCreate",
    "RecipientPublic",
    "SubscriptionCreate",
    "SubscriptionCreated",
    "SubscriptionPublic",
    "SubscriptionUpdate",
]

EventPattern = Annotated[str, Field(pattern=r"^[a-z_*]+(\.[a-z_*]+)?$", max_length=64)]


class SubscriptionCreate(InputModel):
    """A new webhook subscription; the secret is generated and shown once in the answer."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]*$")
    url: str = Field(min_length=1, max_length=2000, description="http:// or https://")
    events: list[EventPattern] = Field(
        min_length=1,
        max_length=20,
        description='event types or patterns: "work_order.*", "alert.opened", "*"',
    )
    active: bool = True


class SubscriptionUpdate(InputModel):
    """Change a subscription; omitted fields stay as they are."""

    name: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]*$")
    url: str | None = Field(None, min_length=1, max_length=2000)
    events: list[EventPattern] | None = Field(None, min_length=1, max_length=20)
    active: bool | None = None


class SubscriptionPublic(PublicModel):
    """A subscription as listed: never its secret."""

    id: int
    name: str
    url: str
    events: list[str]
    active: bool
    legacy: bool
    created_at: UtcTime
    created_by: str
    updated_at: UtcTime
    secret_rotated_at: UtcTime | None


class SubscriptionCreated(SubscriptionPublic):
    """The subscription with its signing secret, shown this once: store it now."""

    secret: str


class RecipientCreate(InputModel):
    """An e-mail address that receives what a role is told (supervisor, manager, ...)."""

    role: str = Field(pattern=ROLE_PATTERN, description="e.g. supervisor, manager")
    email: str = Field(max_length=320, pattern=EMAIL_PATTERN)
    name: str = Field("", max_length=200, pattern=r"^[^\x00-\x1f]*$")


class RecipientPublic(PublicModel):
    """One recipient."""

    id: int
    role: str
    email: str
    name: str
    active: bool
    created_at: UtcTime


class EmailDeliveryPublic(PublicModel):
    """One e-mail of the outbox: to whom, about what, and how sending went."""

    id: int
    escalation_id: int | None
    work_order_id: int | None
    role: str
    to_address: str
    subject: str
    state: str
    attempts: int
    created_at: UtcTime
    next_attempt_at: UtcTime
    last_attempt_at: UtcTime | None
    sent_at: UtcTime | None
    last_error: str | None


class EmailDeliveryQuery(PageQuery):
    """GET /notifications/emails."""

    state: Literal["pending", "sent", "failed", "expired"] | None = None
    work_order_id: int | None = Field(None, ge=1, le=MAX_DB_INT)
