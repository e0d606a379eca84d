"""Schemas for maintenance plans over the fleet, the maintenance calendar and hour history."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from cloud.api.schemas.common import Id, InputModel, PublicModel, UtcTime
from cloud.api.schemas.fleet import MaintenancePlanCreate
from cloud.api.schemas.queries import PageQuery, QueryId
from cloud.domain.vocabulary import AssetKind, Priority

__all__ = [
    "MaintenanceCalendarQuery",
    "MaintenancePlanFleetCreate",
    "MaintenancePlanQuery",
    "MaintenancePlanUpdate",
    "PlannedServicePublic",
    "RunningHoursAdjustmentPublic",
]

_Line = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


class MaintenancePlanFleetCreate(MaintenancePlanCreate):
    """A plan for one asset (`asset_id`) or for every asset of a kind (`asset_kind`)."""

    asset_id: Id | None = None
    asset_kind: AssetKind | None = None

    @model_validator(mode="after")
    def _one_target(self) -> MaintenancePlanFleetCreate:
        if (self.asset_id is None) == (self.asset_kind is None):
            raise ValueError("give asset_id or asset_kind, not both")
        return self


class MaintenancePlanUpdate(InputModel):
    """Fields to change on a plan; absent fields stay. The next due point uses them."""

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    interval_hours: float | None = Field(default=None, gt=0, le=1e6)
    interval_days: float | None = Field(default=None, gt=0, le=3660)
    priority: Priority | None = None
    tasks: list[_Line] | None = Field(default=None, max_length=50)
    parts: list[_Line] | None = Field(default=None, max_length=50)
    active: bool | None = None


class MaintenancePlanQuery(PageQuery):
    """Filters of `GET /maintenance-plans`."""

    asset_id: QueryId | None = None
    asset_kind: AssetKind | None = None
    active: bool | None = None


class MaintenanceCalendarQuery(PageQuery):
    """Filters of `GET /maintenance-calendar`."""

    customer_id: QueryId | None = None
    site_id: QueryId | None = None


class PlannedServicePublic(PublicModel):
    """One plan on one asset: when it falls due by hours (estimated) and by calendar."""

    plan_id: int
    plan_name: str
    task: str
    priority: str
    asset_id: str
    asset_name: str
    customer_id: str | None
    customer_name: str | None
    site_id: str | None
    site_name: str | None
    running_hours: float
    hours_per_day: float | None
    due_hours: float | None
    hours_left: float | None
    due_by_hours_at: UtcTime | None = Field(
        description="estimated from the asset's recent running hours per day; null if idle"
    )
    due_at: UtcTime | None = Field(description="the calendar due date")
    expected_at: UtcTime | None = Field(description="the earlier of the two")
    overdue: bool
    open_work_order_id: int | None


class RunningHoursAdjustmentPublic(PublicModel):
    """A running-hours correction typed in by a person."""

    id: int
    asset_id: str
    at: UtcTime
    hours: float
    total_after: float
    actor: str
    note: str
