"""Webhook subscriptions: who receives which events, at which URL, signed with which secret.

A subscription gets only events that happen after it exists (cloud.domain.outbox copies an
event to the subscriptions active at that moment). The settings file's single
`webhook_url` is kept as the one *legacy* subscription, updated at each start-up.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.db.models import WebhookDelivery, WebhookSubscription
from cloud.domain.errors import InvalidInputError, NotFoundError
from cloud.domain.outbox import EVENT_TYPES, event_matches

__all__ = [
    "LEGACY_NAME",
    "check_events",
    "check_url",
    "create_subscription",
    "delete_subscription",
    "get_subscription",
    "new_secret",
    "refused_address",
    "rotate_secret",
    "sync_legacy_subscription",
    "update_subscription",
]

LEGACY_NAME = "legacy (settings file)"
MAX_URL_LENGTH = 2000


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes, URL-safe text."""
    return "whsec_" + secrets.token_urlsafe(32)


def refused_address(host: str) -> str | None:
    """Why `host` is not a public address (private, loopback, link-local...), or None.

    Resolves names, so a name that points inside the network is caught too; the dispatcher
    checks again before each request, as DNS answers can change.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as err:
        return f"cannot resolve {host}: {err}"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            return f"{host} resolves to non-public address {address}"
    return None


def check_url(url: str, *, refuse_private: bool = False) -> str:
    """The URL if a webhook may be sent to it; InvalidInputError saying why not otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInputError(f"url longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise InvalidInputError(f"not a URL: {err}") from err
    if parts.scheme not in ("http", "https"):
        raise InvalidInputError("url must start with http:// or https://")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInputError("url must not carry credentials; the secret signs each request")
    if not parts.hostname:
        raise InvalidInputError("url needs a host")
    if parts.fragment:
        raise InvalidInputError("url must not have a #fragment")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise InvalidInputError("url must not contain spaces or control characters")
    if port == 0:
        raise InvalidInputError("url port must be 1-65535")
    if refuse_private:
        why = refused_address(parts.hostname)
        if why is not None:
            raise InvalidInputError(f"url refused: {why} (webhook_refuse_private_addresses)")
    return url


def check_events(patterns: list[str]) -> list[str]:
    """The filter if every pattern matches at least one known event type."""
    if not patterns:
        raise InvalidInputError(
            "events must name at least one event type or pattern",
            details={"known": list(EVENT_TYPES)},
        )
    unknown = [p for p in patterns if not any(event_matches([p], e) for e in EVENT_TYPES)]
    if unknown:
        raise InvalidInputError(
            f"events match no event type: {', '.join(unknown)}",
            details={"known": list(EVENT_TYPES)},
        )
    return sorted(set(patterns), key=patterns.index)


def get_subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    """One subscription or NotFoundError."""
    row = session.get(WebhookSubscription, subscription_id)
    if row is None:
        raise NotFoundError(f"webhook subscription {subscription_id} not found")
    return row


def create_subscription(
    session: Session,
    *,
    name: str,
    url: str,
    events: list[str],
    active: bool = True,
    actor: str,
    now: datetime,
    refuse_private: bool = False,
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its secret (shown to the caller once)."""
    secret = new_secret()
    row = WebhookSubscription(
        name=name,
        url=check_url(url, refuse_private=refuse_private),
        events=check_events(events),
        secret=secret,
        active=active,
        legacy=False,
        created_at=now,
        created_by=actor,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row, secret


def update_subscription(
    session: Session,
    subscription_id: int,
    *,
    now: datetime,
    name: str | None = None,
    url: str | None = None,
    events: list[str] | None = None,
    active: bool | None = None,
    refuse_private: bool = False,
) -> WebhookSubscription:
    """Change what was given; the legacy subscription follows the settings file instead."""
    row = get_subscription(session, subscription_id)
    if row.legacy and (url is not None or events is not None):
        raise InvalidInputError(
            "the legacy subscription follows webhook_url in the settings; "
            "create a subscription of your own instead"
        )
    if name is not None:
        row.name = name
    if url is not None:
        row.url = check_url(url, refuse_private=refuse_private)
    if events is not None:
        row.events = check_events(events)
    if active is not None:
        row.active = active
    row.updated_at = now
    session.flush()
    return row


def rotate_secret(
    session: Session, subscription_id: int, *, now: datetime
) -> tuple[WebhookSubscription, str]:
    """A new secret for the subscription; deliveries still pending are signed with it."""
    row = get_subscription(session, subscription_id)
    if row.legacy:
        raise InvalidInputError(
            "the legacy subscription's secret is webhook_secret in the settings"
        )
    secret = new_secret()
    row.secret = secret
    row.secret_rotated_at = now
    row.updated_at = now
    session.flush()
    return row, secret


def delete_subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    """Delete a subscription; its pending deliveries are cancelled, the log stays."""
    row = get_subscription(session, subscription_id)
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == row.id, WebhookDelivery.state == "pending")
        .values(state="cancelled", last_error="subscription deleted")
    )
    session.delete(row)
    session.flush()
    return row


def sync_legacy_subscription(
    session: Session, *, url: str | None, secret: str | None, now: datetime
) -> WebhookSubscription | None:
    """Keep the settings file's webhook as the legacy subscription to every event.

    Created the first time a `webhook_url` is set, so it never receives events older than
    that; deactivated when the setting is removed. Deliveries written before subscriptions
    existed (no subscription) go to it if it exists, else they are skipped: nobody
    subscribed to them.
    """
    legacy = session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.legacy.is_(True))
    ).first()
    if url is not None and secret is not None:
        if legacy is None:
            legacy = WebhookSubscription(
                name=LEGACY_NAME, url=url, events=["*"], secret=secret, active=True,
                legacy=True, created_at=now, created_by="settings", updated_at=now,
            )
            session.add(legacy)
            session.flush()
        elif (legacy.url, legacy.secret, legacy.active) != (url, secret, True):
            legacy.url, legacy.secret, legacy.active = url, secret, True
            legacy.updated_at = now
    elif legacy is not None and legacy.active:
        legacy.active = False
        legacy.updated_at = now
    orphans = (
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id.is_(None), WebhookDelivery.state == "pending")
    )
    if legacy is not None and legacy.active:
        session.execute(orphans.values(subscription_id=legacy.id))
    else:
        session.execute(orphans.values(state="skipped", last_error="no subscription"))
    session.flush()
    return legacy
