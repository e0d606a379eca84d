"""Schemas for the technician roster and dispatch suggestions."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from cloud.api.schemas.common import InputModel, PublicModel, UtcTime
from cloud.domain.technicians import WEEKDAYS
from cloud.domain.vocabulary import AssetKind

__all__ = [
    "CalendarInput",
    "SuggestionPublic",
    "TechnicianCreate",
    "TechnicianPublic",
    "TechnicianUpdate",
]

Hhmm = Annotated[str, Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")]
Shift = Annotated[list[Hhmm], Field(min_length=2, max_length=2, description="[start, end]")]
IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-12-24"])]
ModeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Region = Annotated[str, Field(max_length=64, pattern=r"^[^\x00]*$")]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]


class CalendarInput(InputModel):
    """Working hours per weekday (`mon`..`sun`: [start, end], local time) and days off."""

    timezone: str = Field(default="UTC", max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")
    weekly: dict[str, Shift] = Field(
        default_factory=lambda: {d: ["08:00", "17:00"] for d in WEEKDAYS[:5]},
        max_length=7,
    )
    # JSON has no date type: days off are ISO dates (2026-12-24); the domain checks the day.
    days_off: list[IsoDate] = Field(default_factory=list, max_length=400)


class TechnicianCreate(InputModel):
    """A technician of the roster."""

    name: Name
    failure_modes: list[ModeName] = Field(default_factory=list, max_length=100)
    asset_kinds: list[AssetKind] = Field(default_factory=list, max_length=10)
    region: Region = ""
    calendar: CalendarInput = Field(default_factory=CalendarInput)
    active: bool = True


class TechnicianUpdate(InputModel):
    """Fields to change on a technician."""

    name: Name | None = None
    failure_modes: list[ModeName] | None = Field(default=None, max_length=100)
    asset_kinds: list[AssetKind] | None = Field(default=None, max_length=10)
    region: Region | None = None
    calendar: CalendarInput | None = None
    active: bool | None = None


class TechnicianPublic(PublicModel):
    """A technician as the API shows it."""

    id: int
    name: str
    failure_modes: list[str]
    asset_kinds: list[str]
    region: str
    calendar: dict[str, object]
    active: bool
    open_work_orders: int = 0


class SuggestionPublic(PublicModel):
    """A technician ranked for a work order, with the score's reasons."""

    technician: TechnicianPublic
    score: float
    available: bool = Field(description="has working hours before the resolution deadline")
    available_from: UtcTime | None
    open_work_orders: int
    skill_match: bool
    region_match: bool | None = Field(description="None: the asset's region is unknown")
    reasons: list[str]
