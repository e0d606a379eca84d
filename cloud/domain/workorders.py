"""Preventive-maintenance work orders: opened from alerts, by hand or by running hours.

One open work order per (asset, failure mode). States: open → accepted → assigned →
in_progress → done (with an outcome) → follow_up (a return visit) → closed, or cancelled
(a false alarm then becomes a Verdict the models learn from); docs/work-orders.md has the
diagram. Every change is a WorkOrderEvent and a webhook delivery in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import (
    OPEN_ALERT_STATES,
    OPEN_WORK_ORDER_STATES,
    Alert,
    Asset,
    Technician,
    Verdict,
    WorkOrder,
    WorkOrderEvent,
)
from cloud.domain import alerts as alerts_domain
from cloud.domain import cases as cases_domain
from cloud.domain import parts as parts_domain
from cloud.domain.catalogue import FailureModeCatalogue, default_catalogue
from cloud.domain.clock import require_utc
from cloud.domain.errors import (
    ConflictError,
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
)
from cloud.domain.outbox import enqueue_work_order_event
from cloud.domain.policy import DEFAULT_POLICY, ServiceLevelPolicy, decide_priority
from cloud.domain.technicians import asset_region, get_technician
from cloud.domain.vocabulary import (
    PRIORITIES,
    Priority,
    SlaOutcome,
    WorkOrderSource,
    WorkOrderState,
)

__all__ = [
    "EDITABLE_STATES",
    "TRANSITIONS",
    "Outcome",
    "assign",
    "create_work_order",
    "find_open_work_order",
    "get_work_order",
    "open_from_alert",
    "open_manual",
    "planned_date",
    "rate_work_order",
    "report_fault",
    "resolution_outcome",
    "response_outcome",
    "transition",
    "update_work_order",
]

# The failure mode of a work order a customer opens by reporting a fault (catalogue entry).
CUSTOMER_REPORT_MODE = "customer_report"
# Priority of a customer's fault report until the service desk sets one; the customer's
# tier still sets the response deadline.
CUSTOMER_REPORT_PRIORITY: Priority = "P2"
# States in which the customer may rate the job: the work is finished.
RATEABLE_STATES = ("done", "closed")

# Allowed moves. Back-steps exist because real jobs bounce: a technician hands a job
# back, or a "done" job fails its check and needs rework. `accepted` and `follow_up` are
# optional steps: a desk may assign straight away, and most jobs need no return visit.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"accepted", "assigned", "in_progress", "cancelled"}),
    "accepted": frozenset({"assigned", "in_progress", "cancelled"}),
    "assigned": frozenset({"open", "in_progress", "cancelled"}),
    "in_progress": frozenset({"assigned", "done", "cancelled"}),
    "done": frozenset({"in_progress", "follow_up", "closed"}),
    "follow_up": frozenset({"in_progress", "closed"}),
    "closed": frozenset(),
    "cancelled": frozenset(),
}
# PATCH edits the job's description and plan before anyone is dispatched to it.
EDITABLE_STATES = ("open", "accepted")
# The first move to one of these answers the customer: the response deadline is met.
_RESPONSE_STATES = ("accepted", "assigned", "in_progress")
# Parts are reserved when someone takes the job on.
_RESERVING_STATES = ("accepted", "assigned", "in_progress")


@dataclass(frozen=True)
class Outcome:
    """What the technician found and did, recorded on completion."""

    cause_found: str
    action_taken: str
    parts_used: Mapping[str, int] = dc_field(default_factory=dict)
    downtime_h: float | None = None
    first_time_fix: bool | None = None
_RANK = {p: i for i, p in enumerate(PRIORITIES)}


def get_work_order(session: Session, work_order_id: int) -> WorkOrder:
    """The work order with this id, or NotFoundError."""
    wo = session.get(WorkOrder, work_order_id)
    if wo is None:
        raise NotFoundError(f"work order {work_order_id} not found")
    return wo


def find_open_work_order(session: Session, asset_id: str, failure_mode: str) -> WorkOrder | None:
    """The open/assigned/in-progress work order for this asset and failure mode, if any."""
    return session.scalars(
        select(WorkOrder).where(
            WorkOrder.asset_id == asset_id,
            WorkOrder.failure_mode == failure_mode,
            WorkOrder.state.in_(OPEN_WORK_ORDER_STATES),
        )
    ).one_or_none()


def planned_date(
    *, now: datetime, resolve_by: datetime, rul_low_h: float | None, lead_time_h: float
) -> datetime:
    """When to plan the work: lead time before the earlier of failure and deadline, not past."""
    finish_by = resolve_by
    if rul_low_h is not None:
        finish_by = min(finish_by, now + timedelta(hours=rul_low_h))
    return max(now, finish_by - timedelta(hours=lead_time_h))


def _event(
    wo: WorkOrder,
    kind: str,
    now: datetime,
    actor: str,
    *,
    from_state: str | None = None,
    to_state: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    wo.events.append(
        WorkOrderEvent(
            kind=kind,
            at=now,
            actor=actor,
            from_state=from_state,
            to_state=to_state,
            details=details or {},
        )
    )


def create_work_order(
    session: Session,
    *,
    asset: Asset,
    failure_mode: str,
    priority: Priority,
    priority_reason: str,
    source: WorkOrderSource,
    now: datetime,
    actor: str,
    title: str | None = None,
    description: str = "",
    alert: Alert | None = None,
    rul_low_h: float | None = None,
    policy: ServiceLevelPolicy | None = None,
    catalogue: FailureModeCatalogue | None = None,
    actions: Sequence[str] | None = None,
    parts: Sequence[str] | None = None,
) -> WorkOrder:
    """Create a work order with deadlines and catalogue content; ConflictError on an open twin.

    `actions` / `parts`, when given, replace the catalogue's (a maintenance plan's own).
    """
    now = require_utc(now)
    policy = policy or DEFAULT_POLICY
    catalogue = catalogue or default_catalogue()
    if find_open_work_order(session, asset.id, failure_mode) is not None:
        raise ConflictError(
            f"asset {asset.id} already has an open work order for {failure_mode}",
            details={"asset_id": asset.id, "failure_mode": failure_mode},
        )
    entry = catalogue.lookup(failure_mode)
    resolve_by = now + policy.resolve_within(priority)
    lead_h = entry.lead_time_h if failure_mode in catalogue else policy.default_lead_time_h
    wo = WorkOrder(
        asset_id=asset.id,
        alert_id=alert.id if alert is not None else None,
        source=source,
        failure_mode=failure_mode,
        failure_mode_code=entry.iso14224_mode,
        title=title or f"{entry.name} on {asset.name or asset.id}",
        description=description,
        priority=priority,
        priority_reason=priority_reason,
        state="open",
        suggested_actions=list(entry.actions if actions is None else actions),
        spare_parts=list(entry.spare_parts if parts is None else parts),
        created_at=now,
        updated_at=now,
        created_by=actor,
        respond_by=now + policy.respond_within(priority, asset.tier),
        resolve_by=resolve_by,
        planned_for=planned_date(
            now=now, resolve_by=resolve_by, rul_low_h=rul_low_h, lead_time_h=lead_h
        ),
        resolution_note="",
    )
    session.add(wo)
    _event(
        wo,
        "created",
        now,
        actor,
        to_state="open",
        details={"priority": priority, "reason": priority_reason, "source": source},
    )
    enqueue_work_order_event(session, wo, "work_order.created", now=now)
    return wo


def open_from_alert(
    session: Session,
    alert: Alert,
    *,
    now: datetime,
    policy: ServiceLevelPolicy | None = None,
    catalogue: FailureModeCatalogue | None = None,
) -> WorkOrder | None:
    """Open (or re-prioritise) the work order for an alert; None if the rule says no work order.

    Idempotent: calling it every scoring round returns the same open work order,
    raising its priority if the alert got worse. Not committed.
    """
    now = require_utc(now)
    policy = policy or DEFAULT_POLICY
    decision = decide_priority(
        severity=alert.severity,  # type: ignore[arg-type]
        iso_zone=alert.iso_zone,  # type: ignore[arg-type]
        confidence=alert.confidence,
        rul_low_h=alert.rul_low_h,
        policy=policy,
    )
    reason = "; ".join(decision.reasons)
    existing = find_open_work_order(session, alert.asset_id, alert.failure_mode)
    if existing is not None:
        if _RANK[decision.priority] < _RANK[existing.priority]:  # type: ignore[index]
            old = existing.priority
            existing.priority = decision.priority
            existing.priority_reason = reason
            existing.alert_id = alert.id
            existing.respond_by = min(
                existing.respond_by,
                now + policy.respond_within(decision.priority, existing.asset.tier),
            )
            existing.resolve_by = min(
                existing.resolve_by, now + policy.resolve_within(decision.priority)
            )
            existing.updated_at = now
            change: dict[str, Any] = {"priority": [old, decision.priority], "reason": reason}
            # One update for the service desk: the new priority and, if the forecast moved
            # the failure closer, the earlier planned date with it.
            plan = _earlier_plan(
                existing, rul_low_h=alert.rul_low_h, now=now, policy=policy, catalogue=catalogue
            )
            if plan is not None:
                change["planned_for"] = [_iso(existing.planned_for), plan.isoformat()]
                existing.planned_for = plan
            _event(existing, "reprioritised", now, "system", details=change)
            enqueue_work_order_event(
                session, existing, "work_order.updated", now=now, change=change
            )
            session.flush()
        else:
            _replan(
                session,
                existing,
                rul_low_h=alert.rul_low_h,
                now=now,
                policy=policy,
                catalogue=catalogue,
            )
        return existing
    if not decision.warrants_work_order:
        return None
    wo = create_work_order(
        session,
        asset=alert.asset,
        failure_mode=alert.failure_mode,
        priority=decision.priority,
        priority_reason=reason,
        source="alert",
        now=now,
        actor="system",
        alert=alert,
        rul_low_h=alert.rul_low_h,
        description=f"Alert {alert.id}: {alert.severity}, score {alert.score:.3g}, "
        f"model {alert.model} {alert.model_version}",
        policy=policy,
        catalogue=catalogue,
    )
    session.flush()
    return wo


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _earlier_plan(
    wo: WorkOrder,
    *,
    rul_low_h: float | None,
    now: datetime,
    policy: ServiceLevelPolicy,
    catalogue: FailureModeCatalogue | None,
) -> datetime | None:
    """The planned date the latest forecast asks for, if earlier than the current one."""
    if wo.state not in ("open", "accepted", "assigned"):
        return None
    catalogue = catalogue or default_catalogue()
    entry = catalogue.lookup(wo.failure_mode)
    lead_h = entry.lead_time_h if wo.failure_mode in catalogue else policy.default_lead_time_h
    plan = planned_date(now=now, resolve_by=wo.resolve_by, rul_low_h=rul_low_h, lead_time_h=lead_h)
    if wo.planned_for is not None and plan >= wo.planned_for:
        return None
    return plan


def _replan(
    session: Session,
    wo: WorkOrder,
    *,
    rul_low_h: float | None,
    now: datetime,
    policy: ServiceLevelPolicy,
    catalogue: FailureModeCatalogue | None,
) -> None:
    """Move the planned date earlier when a newer forecast brings the failure closer.

    Never later: a date the planner already agreed to is not pushed out by a noisier
    forecast. A work order that is already done keeps its dates.
    """
    if rul_low_h is None:
        return
    plan = _earlier_plan(wo, rul_low_h=rul_low_h, now=now, policy=policy, catalogue=catalogue)
    if plan is None:
        return
    change = {"planned_for": [_iso(wo.planned_for), plan.isoformat()], "rul_low_h": rul_low_h}
    wo.planned_for = plan
    wo.updated_at = now
    _event(wo, "replanned", now, "system", details=change)
    enqueue_work_order_event(session, wo, "work_order.updated", now=now, change=change)
    session.flush()


def open_manual(
    session: Session,
    *,
    asset_id: str,
    failure_mode: str,
    priority: Priority,
    actor: str,
    now: datetime,
    title: str | None = None,
    description: str = "",
    policy: ServiceLevelPolicy | None = None,
    catalogue: FailureModeCatalogue | None = None,
) -> WorkOrder:
    """A work order the service desk opens by hand, with a priority they choose."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFoundError(f"asset {asset_id} not found")
    if priority not in PRIORITIES:
        raise InvalidInputError(f"unknown priority {priority!r}")
    wo = create_work_order(
        session,
        asset=asset,
        failure_mode=failure_mode,
        priority=priority,
        priority_reason=f"set by {actor}",
        source="manual",
        now=now,
        actor=actor,
        title=title,
        description=description,
        policy=policy,
        catalogue=catalogue,
    )
    session.flush()
    return wo


def _record_verdict(
    session: Session, wo: WorkOrder, verdict: str, *, actor: str, now: datetime, note: str
) -> None:
    alert = wo.alert
    session.add(
        Verdict(
            alert_id=wo.alert_id,
            work_order_id=wo.id,
            asset_id=wo.asset_id,
            failure_mode=wo.failure_mode,
            verdict=verdict,
            model=alert.model if alert is not None else None,
            model_version=alert.model_version if alert is not None else None,
            actor=actor,
            note=note,
            at=now,
        )
    )


def transition(
    session: Session,
    work_order_id: int,
    to_state: WorkOrderState,
    *,
    actor: str,
    now: datetime,
    assignee: str | None = None,
    note: str = "",
    false_alarm: bool = False,
    failure_confirmed_at: datetime | None = None,
    technician_id: int | None = None,
    outcome: Outcome | None = None,
    follow_up_at: datetime | None = None,
    catalogue: FailureModeCatalogue | None = None,
) -> WorkOrder:
    """Move a work order along its state machine; InvalidTransitionError (409) if not allowed.

    `technician_id` (or a free-text `assignee`) on assign; `outcome` on done (stored as
    columns; parts used leave stock); `follow_up_at` (the return visit) on follow_up.
    `false_alarm` on cancel records a Verdict; `failure_confirmed_at` on close records
    when the machine actually failed (for the lead-time KPI) and a confirming Verdict.
    """
    now = require_utc(now)
    wo = get_work_order(session, work_order_id)
    _check_move(wo, to_state)
    tech = get_technician(session, technician_id) if technician_id is not None else None
    if tech is not None and to_state not in ("assigned", "in_progress"):
        raise InvalidInputError("technician_id only applies when assigning or starting")
    if to_state == "assigned" and not (assignee or tech or wo.assignee):
        raise InvalidInputError("assigning a work order needs a technician or an assignee")
    if false_alarm and to_state != "cancelled":
        raise InvalidInputError("false_alarm only applies when cancelling")
    if failure_confirmed_at is not None and to_state != "closed":
        raise InvalidInputError("failure_confirmed_at only applies when closing")
    if outcome is not None and to_state != "done":
        raise InvalidInputError("an outcome only applies when completing (done)")
    if to_state == "follow_up" and follow_up_at is None:
        raise InvalidInputError("a follow-up needs the date of the return visit (follow_up_at)")
    if follow_up_at is not None and to_state != "follow_up":
        raise InvalidInputError("follow_up_at only applies when scheduling a follow-up")
    from_state = wo.state
    wo.state = to_state
    wo.updated_at = now
    details: dict[str, Any] = {"note": note} if note else {}
    if tech is not None:
        details.update(_set_technician(wo, tech))
    elif assignee:
        wo.assignee = assignee
    if to_state in _RESPONSE_STATES and wo.responded_at is None:
        wo.responded_at = now
    if to_state == "accepted":
        wo.accepted_at = now
    if to_state == "in_progress" and wo.started_at is None:
        wo.started_at = now
    if to_state in _RESERVING_STATES and from_state in ("open", "accepted", "assigned"):
        reserved = parts_domain.reserve_parts(
            session, wo, now=now, region=asset_region(wo.asset), catalogue=catalogue
        )
        if reserved:
            details["parts"] = {r.part_id: r.state for r in reserved}
    if to_state == "done":
        wo.done_at = now
        wo.resolution_note = note or wo.resolution_note
        details.update(_record_outcome(session, wo, outcome, now=now))
    if to_state == "follow_up":
        assert follow_up_at is not None
        wo.follow_up_at = require_utc(follow_up_at)
        wo.follow_up_note = note
        details["follow_up_at"] = wo.follow_up_at.isoformat()
    if to_state == "closed":
        wo.closed_at = now
        if failure_confirmed_at is not None:
            wo.failure_confirmed_at = require_utc(failure_confirmed_at)
            _record_verdict(session, wo, "confirmed", actor=actor, now=now, note=note)
    if to_state == "cancelled":
        wo.cancelled_at = now
        wo.resolution_note = note
        parts_domain.release_parts(session, wo, now=now)
        if false_alarm:
            _record_verdict(session, wo, "false_alarm", actor=actor, now=now, note=note)
    alert = wo.alert
    if to_state in ("done", "cancelled") and alert is not None and alert.state in OPEN_ALERT_STATES:
        why = "false alarm" if false_alarm else f"work order {wo.id} {to_state}"
        alerts_domain.resolve(session, alert.id, actor=actor, now=now, note=note or why)
    if assignee and tech is None:
        details["assignee"] = assignee
    if false_alarm:
        details["false_alarm"] = True
    if failure_confirmed_at is not None:
        details["failure_confirmed_at"] = failure_confirmed_at.isoformat()
    _event(wo, "transition", now, actor, from_state=from_state, to_state=to_state, details=details)
    enqueue_work_order_event(
        session,
        wo,
        "work_order.updated",
        now=now,
        change={"state": [from_state, to_state], **details},
    )
    session.flush()
    if to_state == "closed":
        # A confirmed cause makes the job a case in the library, offered on similar alerts.
        cases_domain.record_case(session, wo, now=now)
    return wo


def update_work_order(
    session: Session,
    work_order_id: int,
    *,
    actor: str,
    now: datetime,
    changes: dict[str, Any],
    policy: ServiceLevelPolicy | None = None,
) -> WorkOrder:
    """Edit title, description, assignee, planned date or priority before dispatch.

    A new priority re-derives the deadlines from the creation time, as if set then.
    """
    now = require_utc(now)
    policy = policy or DEFAULT_POLICY
    wo = get_work_order(session, work_order_id)
    if wo.state not in EDITABLE_STATES:
        raise InvalidTransitionError(
            f"work order {wo.id} is {wo.state}; only {' or '.join(EDITABLE_STATES)} "
            "work orders can be edited (assign, reassign and the lifecycle steps change the rest)",
            details={"state": wo.state, "editable_states": list(EDITABLE_STATES)},
        )
    editable = {"title", "description", "assignee", "planned_for", "priority"}
    unknown = set(changes) - editable
    if unknown:
        raise InvalidInputError(f"cannot edit {', '.join(sorted(unknown))}")
    diff: dict[str, Any] = {}
    for field, raw in changes.items():
        value = require_utc(raw) if field == "planned_for" and raw is not None else raw
        if field == "priority" and value not in PRIORITIES:
            raise InvalidInputError(f"unknown priority {value!r}")
        old = getattr(wo, field)
        if old != value:
            diff[field] = [str(old) if old is not None else None, str(value) if value else value]
            setattr(wo, field, value)
    if "priority" in diff:
        wo.priority_reason = f"set by {actor}"
        wo.respond_by = wo.created_at + policy.respond_within(
            wo.priority,  # type: ignore[arg-type]
            wo.asset.tier,
        )
        wo.resolve_by = wo.created_at + policy.resolve_within(wo.priority)  # type: ignore[arg-type]
    if diff:
        wo.updated_at = now
        _event(wo, "edited", now, actor, details=diff)
        enqueue_work_order_event(session, wo, "work_order.updated", now=now, change=diff)
    session.flush()
    return wo


def report_fault(
    session: Session,
    *,
    asset: Asset,
    description: str,
    actor: str,
    now: datetime,
    policy: ServiceLevelPolicy | None = None,
    catalogue: FailureModeCatalogue | None = None,
) -> WorkOrder:
    """A work order the customer opens by reporting a fault on one of its machines.

    Source `customer`, priority P2 until the service desk judges it, the response deadline
    from the customer's tier. A second report while one is open is a ConflictError naming
    the open work order, so the customer follows that one instead of opening twins.
    """
    description = description.strip()
    if not description:
        raise InvalidInputError("describe the fault: what do you see, hear or smell?")
    existing = find_open_work_order(session, asset.id, CUSTOMER_REPORT_MODE)
    if existing is not None:
        raise ConflictError(
            f"a fault on {asset.name or asset.id} is already reported: work order {existing.id}",
            details={"work_order_id": existing.id},
        )
    first_line = description.splitlines()[0][:200]
    wo = create_work_order(
        session,
        asset=asset,
        failure_mode=CUSTOMER_REPORT_MODE,
        priority=CUSTOMER_REPORT_PRIORITY,
        priority_reason=f"reported by the customer ({actor}); to be judged by the service desk",
        source="customer",
        now=now,
        actor=actor,
        title=f"Reported fault on {asset.name or asset.id}: {first_line}",
        description=description,
        policy=policy,
        catalogue=catalogue,
    )
    session.flush()
    return wo


def _check_move(wo: WorkOrder, to_state: str) -> None:
    allowed = TRANSITIONS.get(wo.state, frozenset())
    if to_state not in allowed:
        names = ", ".join(sorted(allowed)) or "none: the work order is finished"
        raise InvalidTransitionError(
            f"work order {wo.id} cannot go from {wo.state} to {to_state}; allowed: {names}",
            details={"from": wo.state, "to": to_state, "allowed": sorted(allowed)},
        )


def _set_technician(wo: WorkOrder, tech: Technician) -> dict[str, Any]:
    if not tech.active:
        raise InvalidInputError(f"technician {tech.id} ({tech.name}) is not active")
    change: dict[str, Any] = {"technician_id": tech.id, "assignee": tech.name}
    if wo.technician_id is not None and wo.technician_id != tech.id:
        change["previous_technician_id"] = wo.technician_id
        change["previous_assignee"] = wo.assignee
    wo.technician_id = tech.id
    wo.assignee = tech.name
    return change


def _record_outcome(
    session: Session, wo: WorkOrder, outcome: Outcome | None, *, now: datetime
) -> dict[str, Any]:
    """Store the outcome on the work order and settle its parts; the history details."""
    if outcome is None:
        # Completed without an outcome (older clients): reservations go back to stock.
        parts_domain.consume_parts(session, wo, {}, now=now, region=asset_region(wo.asset))
        return {}
    if outcome.downtime_h is not None and not 0 <= outcome.downtime_h <= 24 * 366:
        raise InvalidInputError("downtime_h must be between 0 and a year of hours")
    wo.cause_found = outcome.cause_found
    wo.action_taken = outcome.action_taken
    wo.downtime_h = outcome.downtime_h
    wo.first_time_fix = outcome.first_time_fix
    parts_domain.consume_parts(
        session, wo, outcome.parts_used, now=now, region=asset_region(wo.asset)
    )
    return {
        "outcome": {
            "cause_found": outcome.cause_found,
            "action_taken": outcome.action_taken,
            "parts_used": dict(outcome.parts_used),
            "downtime_h": outcome.downtime_h,
            "first_time_fix": outcome.first_time_fix,
        }
    }


def assign(
    session: Session,
    work_order_id: int,
    technician_id: int,
    *,
    actor: str,
    now: datetime,
    note: str = "",
    catalogue: FailureModeCatalogue | None = None,
) -> WorkOrder:
    """Assign the work order to a technician: from open or accepted it becomes assigned;
    an assigned or in-progress one is reassigned (the previous technician is kept in the
    history). 409 in other states."""
    now = require_utc(now)
    wo = get_work_order(session, work_order_id)
    if wo.state in ("open", "accepted"):
        return transition(
            session, work_order_id, "assigned", actor=actor, now=now,
            technician_id=technician_id, note=note, catalogue=catalogue,
        )
    if wo.state not in ("assigned", "in_progress"):
        raise InvalidTransitionError(
            f"work order {wo.id} is {wo.state}; only open, accepted, assigned or in-progress "
            "work orders can be assigned",
            details={"state": wo.state, "allowed": ["accepted", "assigned", "in_progress", "open"]},
        )
    tech = get_technician(session, technician_id)
    if wo.technician_id == tech.id:
        return wo
    change = _set_technician(wo, tech)
    if note:
        change["note"] = note
    wo.updated_at = now
    _event(wo, "reassigned", now, actor, details=change)
    enqueue_work_order_event(session, wo, "work_order.updated", now=now, change=change)
    session.flush()
    return wo


def rate_work_order(
    session: Session,
    work_order_id: int,
    *,
    satisfaction: int,
    feedback: str | None,
    actor: str,
    now: datetime,
) -> WorkOrder:
    """Record the customer's satisfaction (1-5) and comment on a finished work order, once.

    This is the customer's confirmation step of the lifecycle, between completion and the
    follow-up; the state does not change. Allowed when the work is done or closed
    (InvalidTransitionError otherwise, naming the states); a second rating is a
    ConflictError, so a rating is never silently replaced.
    """
    now = require_utc(now)
    if isinstance(satisfaction, bool) or not 1 <= satisfaction <= 5:
        raise InvalidInputError("satisfaction is a whole number from 1 to 5")
    wo = get_work_order(session, work_order_id)
    if wo.state not in RATEABLE_STATES:
        raise InvalidTransitionError(
            f"work order {wo.id} is {wo.state}; it can be rated once the work is finished",
            details={"state": wo.state, "allowed_states": list(RATEABLE_STATES)},
        )
    if wo.satisfaction is not None:
        raise ConflictError(
            f"work order {wo.id} is already rated", details={"satisfaction": wo.satisfaction}
        )
    wo.satisfaction = satisfaction
    wo.feedback = (feedback or "").strip() or None
    wo.updated_at = now
    details: dict[str, Any] = {"satisfaction": satisfaction}
    if wo.feedback:
        details["feedback"] = wo.feedback
    _event(wo, "rated", now, actor, details=details)
    enqueue_work_order_event(session, wo, "work_order.updated", now=now, change={"rated": details})
    session.flush()
    return wo


def response_outcome(wo: WorkOrder, now: datetime) -> SlaOutcome:
    """How the response deadline turned out; `n/a` for a cancelled work order."""
    if wo.state == "cancelled":
        return "n/a"
    if wo.responded_at is not None:
        return "met" if wo.responded_at <= wo.respond_by else "missed"
    return "missed" if now > wo.respond_by else "pending"


def resolution_outcome(wo: WorkOrder, now: datetime) -> SlaOutcome:
    """How the resolution deadline turned out; `n/a` for a cancelled work order."""
    if wo.state == "cancelled":
        return "n/a"
    if wo.done_at is not None:
        return "met" if wo.done_at <= wo.resolve_by else "missed"
    return "missed" if now > wo.resolve_by else "pending"
