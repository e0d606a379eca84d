"""Schemas for work orders, their history and escalations."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cloud.api.schemas.common import MAX_DB_INT, Id, InputModel, PublicModel, UtcInput, UtcTime
from cloud.domain.vocabulary import Priority, SlaOutcome, WorkOrderState

__all__ = [
    "EscalationPublic",
    "OutcomeInput",
    "PartNeedPublic",
    "PartUse",
    "WorkOrderAssign",
    "WorkOrderComplete",
    "WorkOrderCreate",
    "WorkOrderEventPublic",
    "WorkOrderPublic",
    "WorkOrderTransition",
    "WorkOrderUpdate",
]

_FailureMode = Field(default="manual_inspection", pattern=r"^[a-z][a-z0-9_]{0,63}$")
_Note = Field(default="", max_length=2000, pattern=r"^[^\x00]*$")


class WorkOrderCreate(InputModel):
    """A work order opened by hand by the service desk."""

    asset_id: Id
    failure_mode: str = _FailureMode
    priority: Priority = "P3"
    title: str | None = Field(default=None, min_length=1, max_length=300, pattern=r"^[^\x00]*$")
    description: str = _Note


class WorkOrderUpdate(InputModel):
    """Fields to change on an open work order."""

    title: str | None = Field(default=None, min_length=1, max_length=300, pattern=r"^[^\x00]*$")
    description: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")
    assignee: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^\x00]*$")
    planned_for: UtcInput | None = None
    priority: Priority | None = None


class PartUse(InputModel):
    """A quantity of one part (by part number)."""

    part_id: Id
    quantity: int = Field(ge=1, le=10_000)


class OutcomeInput(InputModel):
    """What the technician found and did."""

    cause_found: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")
    action_taken: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")
    parts_used: list[PartUse] = Field(default_factory=list, max_length=100)
    downtime_h: float | None = Field(default=None, ge=0, le=24 * 366)
    first_time_fix: bool


class WorkOrderTransition(InputModel):
    """Move a work order to another state, with what that step records."""

    to_state: WorkOrderState
    assignee: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^\x00]*$")
    technician_id: int | None = Field(default=None, ge=1, le=MAX_DB_INT)
    note: str = _Note
    false_alarm: bool = False
    failure_confirmed_at: UtcInput | None = None
    outcome: OutcomeInput | None = Field(default=None, description="on done")
    follow_up_at: UtcInput | None = Field(default=None, description="on follow_up: the visit")


class WorkOrderAssign(InputModel):
    """Assign (or reassign) the work order to a technician of the roster."""

    technician_id: int = Field(ge=1, le=MAX_DB_INT)
    note: str = _Note


class WorkOrderComplete(OutcomeInput):
    """Complete the work order (in_progress → done) with its outcome."""

    note: str = _Note


class PartNeedPublic(PublicModel):
    """A part the work order needs and how it stands."""

    part_id: str
    name: str
    quantity: int
    state: str = Field(
        description="reserved, short, used, released, not_reserved (not yet taken on) "
        "or not_stocked (not in the parts catalogue)"
    )
    warehouse_id: str | None
    used: int
    available: int = Field(description="free stock over all warehouses now")


class WorkOrderPublic(PublicModel):
    """A work order as the API shows it."""

    id: int
    asset_id: str
    alert_id: int | None
    source: str
    failure_mode: str
    failure_mode_code: str
    title: str
    description: str
    priority: str
    priority_reason: str
    state: str
    assignee: str | None
    suggested_actions: list[str]
    spare_parts: list[str]
    created_at: UtcTime
    updated_at: UtcTime
    created_by: str
    respond_by: UtcTime
    resolve_by: UtcTime
    planned_for: UtcTime | None
    responded_at: UtcTime | None
    done_at: UtcTime | None
    closed_at: UtcTime | None
    cancelled_at: UtcTime | None
    failure_confirmed_at: UtcTime | None
    resolution_note: str
    technician_id: int | None
    accepted_at: UtcTime | None
    started_at: UtcTime | None
    cause_found: str | None
    action_taken: str | None
    downtime_h: float | None
    first_time_fix: bool | None
    parts_used: dict[str, int] = Field(description="part number → quantity used")
    satisfaction: int | None = Field(description="the customer's rating, 1-5")
    feedback: str | None = Field(description="the customer's comment with the rating")
    follow_up_at: UtcTime | None
    follow_up_note: str | None
    next_states: list[str] = Field(description="the states this work order may move to")
    sla_response: SlaOutcome
    sla_resolution: SlaOutcome


class WorkOrderEventPublic(PublicModel):
    """One entry of a work order's history."""

    id: int
    at: UtcTime
    kind: str
    from_state: str | None
    to_state: str | None
    actor: str
    details: dict[str, Any]


class EscalationPublic(PublicModel):
    """A level of the escalation ladder reached for a deadline (warning, supervisor, ...)."""

    id: int
    work_order_id: int
    kind: str
    level: str
    due_at: UtcTime
    raised_at: UtcTime
    priority: str
    notified_to: str
    acknowledged_at: UtcTime | None
    acknowledged_by: str | None
