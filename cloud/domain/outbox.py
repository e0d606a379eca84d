"""The webhook outbox: deliveries are written in the same transaction as the change.

If the transaction commits, the delivery exists and a worker will send it (at least
once, surviving restarts); if it rolls back, nothing is announced that did not happen.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from cloud.db.models import WebhookDelivery, WorkOrder

__all__ = ["WebhookEvent", "enqueue_work_order_event", "work_order_payload"]

WebhookEvent = Literal["work_order.created", "work_order.updated"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


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
    }


def enqueue_work_order_event(
    session: Session,
    wo: WorkOrder,
    event: WebhookEvent,
    *,
    now: datetime,
    change: dict[str, Any] | None = None,
) -> WebhookDelivery:
    """Add a pending delivery announcing `event` for `wo` (flushes to get ids)."""
    session.flush()
    body = {
        "event": event,
        "occurred_at": _iso(now),
        "work_order": work_order_payload(wo),
        "change": change or {},
    }
    delivery = WebhookDelivery(
        event=event,
        work_order_id=wo.id,
        # Compact, key-sorted JSON: the signed bytes are stable and easy to reproduce.
        body=json.dumps(body, separators=(",", ":"), sort_keys=True),
        state="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(delivery)
    return delivery
