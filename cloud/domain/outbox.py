"""The webhook outbox: deliveries are written in the same transaction as the change.

If the transaction commits, the deliveries exist and a worker will send them (at least
once, surviving restarts); if it rolls back, nothing is announced that did not happen.
An event is copied once per active subscription whose filter matches and which existed
when the event happened, so a new subscription never receives older events.
"""

from __future__ import annotations

import json
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import Alert, WebhookDelivery, WebhookSubscription, WorkOrder

__all__ = [
    "EVENT_TYPES",
    "WebhookEvent",
    "alert_payload",
    "enqueue_alert_event",
    "enqueue_event",
    "enqueue_work_order_event",
    "event_matches",
    "work_order_payload",
]

WebhookEvent = Literal[
    "work_order.created",
    "work_order.updated",
    "escalation.warning",
    "escalation.raised",
    "alert.opened",
    "stock.low",
]
EVENT_TYPES: tuple[WebhookEvent, ...] = (
    "work_order.created",
    "work_order.updated",
    "escalation.warning",
    "escalation.raised",
    "alert.opened",
    "stock.low",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def event_matches(patterns: list[str] | tuple[str, ...], event: str) -> bool:
    """True if `event` matches one of the filter's patterns (`*` is a wildcard)."""
    return any(fnmatchcase(event, pattern) for pattern in patterns)


def work_order_payload(wo: WorkOrder) -> dict[str, Any]:
    """The work order as the service desk sees it in a webhook body."""
    return {
        "id": wo.id,
        "asset_id": wo.asset_id,
        "alert_id": wo.alert_id,
        "source": wo.source,
        "failure_mode": wo.failure_mode,
        "failure_mode_code": wo.failure_mode_code,
        "title": wo.title,
        "description": wo.description,
        "priority": wo.priority,
        "priority_reason": wo.priority_reason,
        "state": wo.state,
        "assignee": wo.assignee,
        "suggested_actions": list(wo.suggested_actions),
        "spare_parts": list(wo.spare_parts),
        "created_at": _iso(wo.created_at),
        "updated_at": _iso(wo.updated_at),
        "respond_by": _iso(wo.respond_by),
        "resolve_by": _iso(wo.resolve_by),
        "planned_for": _iso(wo.planned_for),
        "technician_id": wo.technician_id,
    }


def alert_payload(alert: Alert) -> dict[str, Any]:
    """An alert as a webhook body shows it."""
    return {
        "id": alert.id,
        "asset_id": alert.asset_id,
        "failure_mode": alert.failure_mode,
        "severity": alert.severity,
        "state": alert.state,
        "score": alert.score,
        "confidence": alert.confidence,
        "iso_zone": alert.iso_zone,
        "opened_at": _iso(alert.opened_at),
    }


def enqueue_event(
    session: Session,
    event: WebhookEvent,
    payload: dict[str, Any],
    *,
    now: datetime,
    work_order_id: int | None = None,
) -> list[WebhookDelivery]:
    """Add one pending delivery of `event` per matching subscription; returns them."""
    subscriptions = session.scalars(
        select(WebhookSubscription).where(
            WebhookSubscription.active.is_(True), WebhookSubscription.created_at <= now
        )
    ).all()
    targets = [s for s in subscriptions if event_matches(list(s.events), event)]
    if not targets:
        return []
    # Compact, key-sorted JSON: the signed bytes are stable and easy to reproduce.
    body = json.dumps(
        {"event": event, "occurred_at": _iso(now), **payload},
        separators=(",", ":"),
        sort_keys=True,
    )
    deliveries = [
        WebhookDelivery(
            event=event,
            work_order_id=work_order_id,
            subscription_id=subscription.id,
            body=body,
            state="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        for subscription in targets
    ]
    session.add_all(deliveries)
    return deliveries


def enqueue_work_order_event(
    session: Session,
    wo: WorkOrder,
    event: WebhookEvent,
    *,
    now: datetime,
    change: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> list[WebhookDelivery]:
    """Announce `event` for `wo` to every subscription that wants it (flushes to get ids)."""
    session.flush()
    payload = {"work_order": work_order_payload(wo), "change": change or {}, **(extra or {})}
    return enqueue_event(session, event, payload, now=now, work_order_id=wo.id)


def enqueue_alert_event(
    session: Session, alert: Alert, event: WebhookEvent, *, now: datetime
) -> list[WebhookDelivery]:
    """Announce `event` for an alert (flushes to get its id)."""
    session.flush()
    return enqueue_event(session, event, {"alert": alert_payload(alert)}, now=now)
