"""The escalation ladder: warn before a deadline, escalate at it and again later.

Each work order has two deadlines (response, resolution); each level of the ladder
(`ServiceLevelPolicy.escalation_levels`, default: a warning at 75 % of the time, the
supervisor at the deadline, the manager half a window late) fires once per work order and
deadline. The unique (work order, kind, level) constraint makes repeated checks, restarts
and two cloud processes checking at once harmless. A level is recorded as an `Escalation`
row and a history entry, and announced by webhook (`escalation.warning` /
`escalation.raised`) and by e-mail to the roles it names. A deadline that is met
(responded, resolved) or a cancelled work order stops its ladder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.db.models import OPEN_WORK_ORDER_STATES, Escalation, WorkOrder, WorkOrderEvent
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidTransitionError, NotFoundError
from cloud.domain.notifications import enqueue_escalation_emails
from cloud.domain.outbox import WebhookEvent, enqueue_work_order_event
from cloud.domain.policy import DEFAULT_POLICY, EscalationLevel, ServiceLevelPolicy

__all__ = ["acknowledge_escalation", "check_escalations", "escalation_payload"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _deadlines(wo: WorkOrder) -> list[tuple[str, datetime]]:
    """The deadlines still running: response until responded, resolution until resolved."""
    running: list[tuple[str, datetime]] = []
    if wo.responded_at is None:
        running.append(("response", wo.respond_by))
    if wo.state in OPEN_WORK_ORDER_STATES:
        running.append(("resolution", wo.resolve_by))
    return running


@dataclass(frozen=True)
class _Due:
    """A ladder level reached for one deadline of one work order."""

    kind: str
    deadline: datetime
    level: EscalationLevel
    fires_at: datetime


def _due(wo: WorkOrder, levels: tuple[EscalationLevel, ...], now: datetime) -> list[_Due]:
    """Every level reached by `now`, earliest first."""
    due: list[_Due] = []
    for kind, deadline in _deadlines(wo):
        for level in levels:
            if kind not in level.deadlines:
                continue
            fires_at = level.fires_at(wo.created_at, deadline)
            if now >= fires_at:
                due.append(_Due(kind, deadline, level, fires_at))
    due.sort(key=lambda item: item.fires_at)
    return due


def _earliest_fraction(levels: tuple[EscalationLevel, ...]) -> float:
    """The smallest share of a window after which any level can fire (to narrow the query)."""
    fractions = [level.at_fraction for level in levels if level.at_fraction is not None]
    return min([*fractions, 1.0])


def escalation_payload(escalation: Escalation, level: EscalationLevel) -> dict[str, object]:
    """The escalation as a webhook body shows it."""
    return {
        "id": escalation.id,
        "kind": escalation.kind,
        "level": escalation.level,
        "warning": level.is_warning,
        "due_at": _iso(escalation.due_at),
        "raised_at": _iso(escalation.raised_at),
        "notified_to": escalation.notified_to,
    }


def check_escalations(
    session: Session,
    now: datetime,
    *,
    policy: ServiceLevelPolicy = DEFAULT_POLICY,
    dashboard_url: str = "",
    max_raised: int = 500,
) -> list[Escalation]:
    """Raise every ladder level reached by `now` and not raised before; returns the new ones.

    At most `max_raised` in one call (oldest work orders first), so the first tick after a
    long outage does not hold the database's write lock for long; the next tick goes on.
    """
    now = require_utc(now)
    levels = policy.escalation_levels
    if not levels:
        return []
    candidates = session.scalars(
        select(WorkOrder)
        .where(WorkOrder.state.in_(OPEN_WORK_ORDER_STATES))
        .order_by(WorkOrder.id)
    ).all()
    # Only work orders with at least one level due; cheap in Python, and exact.
    earliest = _earliest_fraction(levels)
    candidates = [
        wo
        for wo in candidates
        if any(
            now >= wo.created_at + (deadline - wo.created_at) * earliest
            for _, deadline in _deadlines(wo)
        )
    ]
    if not candidates:
        return []
    ids = [wo.id for wo in candidates]
    existing = {
        (wo_id, kind, level)
        for wo_id, kind, level in session.execute(
            select(Escalation.work_order_id, Escalation.kind, Escalation.level).where(
                Escalation.work_order_id.in_(ids)
            )
        )
    }
    raised: list[Escalation] = []
    for wo in candidates:
        for due in _due(wo, levels, now):
            if (wo.id, due.kind, due.level.name) in existing:
                continue
            if len(raised) >= max_raised:
                break
            escalation = _raise(session, wo, due, now=now, dashboard_url=dashboard_url)
            if escalation is not None:
                raised.append(escalation)
    session.flush()
    return raised


def _raise(
    session: Session, wo: WorkOrder, due: _Due, *, now: datetime, dashboard_url: str
) -> Escalation | None:
    kind, deadline, level = due.kind, due.deadline, due.level
    escalation = Escalation(
        work_order_id=wo.id,
        kind=kind,
        level=level.name,
        due_at=deadline,
        raised_at=now,
        priority=wo.priority,
        notified_to=",".join(level.notify),
    )
    try:
        # Another process may have raised the same level a moment ago: the unique
        # constraint decides, and the loser only rolls back this savepoint.
        with session.begin_nested():
            session.add(escalation)
    except IntegrityError:
        return None
    details = {
        "kind": kind,
        "level": level.name,
        "due_at": deadline.isoformat(),
        "fires_at": due.fires_at.isoformat(),
        "notified_to": list(level.notify),
    }
    history_kind = "escalation_warning" if level.is_warning else "escalated"
    wo.events.append(WorkOrderEvent(kind=history_kind, at=now, actor="system", details=details))
    event: WebhookEvent = "escalation.warning" if level.is_warning else "escalation.raised"
    enqueue_work_order_event(
        session, wo, event, now=now, extra={"escalation": escalation_payload(escalation, level)}
    )
    if not level.is_warning:
        # The work order's own feed keeps saying "escalated", as before the ladder.
        enqueue_work_order_event(
            session, wo, "work_order.updated", now=now, change={"escalated": details}
        )
    enqueue_escalation_emails(session, wo, escalation, level, now=now,
                              dashboard_url=dashboard_url)
    return escalation


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
