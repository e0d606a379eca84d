"""What people do on an alert besides acknowledging and judging it: comment on it, open its
work order by hand, assign that work order. Shared by the REST API and the dashboard."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import OPEN_WORK_ORDER_STATES, AlertEvent, WorkOrder
from cloud.domain import alerts as alerts_domain
from cloud.domain import workorders
from cloud.domain.catalogue import FailureModeCatalogue
from cloud.domain.clock import require_utc
from cloud.domain.errors import ConflictError, InvalidInputError
from cloud.domain.policy import ServiceLevelPolicy
from cloud.domain.vocabulary import PRIORITIES, Priority

__all__ = [
    "MAX_COMMENT_CHARS",
    "MAX_NAME_CHARS",
    "assign_work_order",
    "comment",
    "open_work_order",
    "open_work_order_of",
]

MAX_COMMENT_CHARS = 2000
MAX_NAME_CHARS = 100


def _clean(text: str, what: str, limit: int) -> str:
    text = text.strip()
    if not text:
        raise InvalidInputError(f"{what} is empty")
    if len(text) > limit:
        raise InvalidInputError(f"{what} is longer than {limit} characters")
    if "\x00" in text:
        raise InvalidInputError(f"{what} contains a NUL character")
    return text


def comment(session: Session, alert_id: int, *, actor: str, now: datetime, text: str) -> AlertEvent:
    """A free-text note in the alert's history; any state, open or closed."""
    now = require_utc(now)
    body = _clean(text, "the comment", MAX_COMMENT_CHARS)
    alert = alerts_domain.get_alert(session, alert_id)
    event = AlertEvent(kind="comment", at=now, actor=actor, details={"text": body})
    alert.events.append(event)
    session.flush()
    return event


def open_work_order_of(session: Session, alert_id: int) -> WorkOrder | None:
    """The open (assigned, in progress) work order opened from this alert, if any."""
    return session.scalars(
        select(WorkOrder)
        .where(WorkOrder.alert_id == alert_id, WorkOrder.state.in_(OPEN_WORK_ORDER_STATES))
        .order_by(WorkOrder.id.desc())
    ).first()


def open_work_order(
    session: Session,
    alert_id: int,
    *,
    priority: Priority,
    actor: str,
    now: datetime,
    note: str = "",
    policy: ServiceLevelPolicy | None = None,
    catalogue: FailureModeCatalogue | None = None,
) -> WorkOrder:
    """Open a work order by hand for an alert, with the priority the person chose.

    ConflictError (409) if the asset already has an open work order for the failure mode:
    one job per (asset, failure mode), whoever opened it.
    """
    now = require_utc(now)
    if priority not in PRIORITIES:
        raise InvalidInputError(f"unknown priority {priority!r}", details={"allowed": PRIORITIES})
    alert = alerts_domain.get_alert(session, alert_id)
    existing = workorders.find_open_work_order(session, alert.asset_id, alert.failure_mode)
    if existing is not None:
        raise ConflictError(
            f"work order {existing.id} is already open for {alert.failure_mode} on "
            f"{alert.asset_id}",
            details={"work_order_id": existing.id},
        )
    description = f"Opened by {actor} from alert {alert.id} ({alert.severity})."
    if note.strip():
        description += "\n" + _clean(note, "the note", MAX_COMMENT_CHARS)
    wo = workorders.create_work_order(
        session,
        asset=alert.asset,
        failure_mode=alert.failure_mode,
        priority=priority,
        priority_reason=f"set by {actor}",
        source="manual",
        now=now,
        actor=actor,
        description=description,
        alert=alert,
        rul_low_h=alert.rul_low_h,
        policy=policy,
        catalogue=catalogue,
    )
    session.flush()
    return wo


def assign_work_order(
    session: Session, work_order_id: int, *, assignee: str, actor: str, now: datetime
) -> WorkOrder:
    """Give a work order to a person: an open one moves to "assigned", an assigned or
    in-progress one changes hands. Closed, done and cancelled ones are a conflict."""
    name = _clean(assignee, "the assignee", MAX_NAME_CHARS)
    wo = workorders.get_work_order(session, work_order_id)
    if wo.state == "open":
        return workorders.transition(
            session, work_order_id, "assigned", actor=actor, now=now, assignee=name
        )
    return workorders.update_work_order(
        session, work_order_id, actor=actor, now=now, changes={"assignee": name}
    )
