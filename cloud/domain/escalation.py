"""Escalation: a missed response or resolution deadline raises an Escalation, once.

The scheduler calls `check_escalations` often; the unique (work order, kind) constraint
plus a lookup make repeated calls harmless, and a webhook tells the service desk.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import OPEN_WORK_ORDER_STATES, Escalation, WorkOrder, WorkOrderEvent
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidTransitionError, NotFoundError
from cloud.domain.outbox import enqueue_work_order_event

__all__ = ["acknowledge_escalation", "check_escalations"]


def _overdue(wo: WorkOrder, now: datetime) -> list[tuple[str, datetime]]:
    due: list[tuple[str, datetime]] = []
    # Response is met by the first move to assigned/in progress; only still-open ones miss it.
    if wo.responded_at is None and now > wo.respond_by:
        due.append(("response", wo.respond_by))
    if wo.state in OPEN_WORK_ORDER_STATES and now > wo.resolve_by:
        due.append(("resolution", wo.resolve_by))
    return due


def check_escalations(session: Session, now: datetime) -> list[Escalation]:
    """Raise an Escalation for each newly overdue response or resolution; returns the new ones."""
    now = require_utc(now)
    candidates = session.scalars(
        select(WorkOrder).where(
            WorkOrder.state.in_(OPEN_WORK_ORDER_STATES),
            (WorkOrder.respond_by < now) | (WorkOrder.resolve_by < now),
        )
    ).all()
    if not candidates:
        return []
    ids = [wo.id for wo in candidates]
    existing = {
        (wo_id, kind)
        for wo_id, kind in session.execute(
            select(Escalation.work_order_id, Escalation.kind).where(
                Escalation.work_order_id.in_(ids)
            )
        )
    }
    raised: list[Escalation] = []
    for wo in candidates:
        for kind, due_at in _overdue(wo, now):
            if (wo.id, kind) in existing:
                continue
            escalation = Escalation(
                work_order_id=wo.id,
                kind=kind,
                due_at=due_at,
                raised_at=now,
                priority=wo.priority,
                notified_to="service_desk",
            )
            session.add(escalation)
            details = {"kind": kind, "due_at": due_at.isoformat()}
            wo.events.append(
                WorkOrderEvent(kind="escalated", at=now, actor="system", details=details)
            )
            enqueue_work_order_event(
                session, wo, "work_order.updated", now=now, change={"escalated": details}
            )
            raised.append(escalation)
    session.flush()
    return raised


def acknowledge_escalation(
    session: Session, escalation_id: int, *, actor: str, now: datetime
) -> Escalation:
    """Record that someone took the escalation on."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFoundError(f"escalation {escalation_id} not found")
    if escalation.acknowledged_at is not None:
        raise InvalidTransitionError(f"escalation {escalation_id} is already acknowledged")
    escalation.acknowledged_at = require_utc(now)
    escalation.acknowledged_by = actor
    session.flush()
    return escalation
