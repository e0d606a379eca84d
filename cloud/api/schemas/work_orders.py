"""Schemas for work orders, their history and escalations."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cloud.api.schemas.common import Id, InputModel, PublicModel, UtcInput, UtcTime
from cloud.domain.vocabulary import Priority, WorkOrderState

__all__ = [
    "EscalationPublic",
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


class WorkOrderTransition(InputModel):
    """Move a work order to another state."""

    to_state: WorkOrderState
    assignee: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^\x00]*$")
    note: str = _Note
    false_alarm: bool = False
    failure_confirmed_at: UtcInput | None = None


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
    satisfaction: int | None = Field(description="the customer's rating, 1-5")
    feedback: str | None = Field(description="the customer's comment with the rating")


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
