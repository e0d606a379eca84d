"""The technician roster and dispatch: who should go to this work order, and why.

A suggestion ranks the active technicians for one work order by skill (the failure mode
and the asset kind), region (the asset's site), current load (open work orders assigned
to them) and calendar (working hours before the resolution deadline). Every point of the
score comes with a reason, so the service desk sees why the list is in this order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db.models import OPEN_WORK_ORDER_STATES, Asset, Technician, WorkOrder
from cloud.domain.catalogue import FailureModeCatalogue, default_catalogue
from cloud.domain.errors import InvalidInputError, NotFoundError

__all__ = [
    "WEEKDAYS",
    "Suggestion",
    "WorkingCalendar",
    "asset_region",
    "get_technician",
    "next_working_time",
    "open_loads",
    "suggest_technicians",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Score weights: a skill match matters most, then the region (travel), then the kind.
SKILL_POINTS = 3.0
KIND_POINTS = 1.0
REGION_POINTS = 2.0
LOAD_PENALTY = 1.0
HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


class WorkingCalendar(BaseModel):
    """Weekly working hours in a time zone, and days off (holidays, leave)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    weekly: dict[str, tuple[HHMM, HHMM]] = Field(
        default_factory=lambda: {d: ("08:00", "17:00") for d in WEEKDAYS[:5]}
    )
    days_off: tuple[date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r}") from err
        return value

    @field_validator("weekly")
    @classmethod
    def _days(cls, value: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
        for day, (start, end) in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r} (use {', '.join(WEEKDAYS)})")
            if end <= start:
                raise ValueError(f"{day}: the shift must end after it starts")
        return value

    @classmethod
    def read(cls, raw: dict[str, Any]) -> WorkingCalendar:
        """The calendar stored on a technician; InvalidInputError if it does not validate."""
        try:
            return cls.model_validate(raw or {})
        except ValidationError as err:
            raise InvalidInputError(
                "invalid working calendar", details={"errors": err.errors(include_url=False)}
            ) from err


def _clock(hhmm: str) -> time | None:
    """A time of day; None for 24:00 (end of day)."""
    if hhmm == "24:00":
        return None
    hours, minutes = hhmm.split(":")
    return time(int(hours), int(minutes))


def next_working_time(
    calendar: WorkingCalendar, after: datetime, until: datetime
) -> datetime | None:
    """The first moment in [after, until) the technician is at work, in UTC; None if never."""
    zone = ZoneInfo(calendar.timezone)
    local = after.astimezone(zone)
    day = local.date()
    while True:
        start_of_day = datetime.combine(day, time(0), zone)
        if start_of_day >= until:
            return None
        shift = calendar.weekly.get(WEEKDAYS[day.weekday()])
        if shift is not None and day not in calendar.days_off:
            begin_t, end_t = _clock(shift[0]), _clock(shift[1])
            begin = datetime.combine(day, begin_t or time(0), zone)
            end = (
                datetime.combine(day, end_t, zone)
                if end_t is not None
                else datetime.combine(day + timedelta(days=1), time(0), zone)
            )
            candidate = max(begin, after)
            if candidate < end:
                return candidate.astimezone(UTC) if candidate < until else None
        day += timedelta(days=1)


def asset_region(asset: Asset) -> str | None:
    """The region of the asset's site, if the asset belongs to a site that names one."""
    site = asset.site
    return (site.region or None) if site is not None else None


def get_technician(session: Session, technician_id: int) -> Technician:
    """The technician with this id, or NotFoundError."""
    tech = session.get(Technician, technician_id)
    if tech is None:
        raise NotFoundError(f"technician {technician_id} not found")
    return tech


@dataclass(frozen=True)
class Suggestion:
    """One technician ranked for a work order, with the reasons behind the score."""

    technician: Technician
    score: float
    available: bool
    available_from: datetime | None
    open_work_orders: int
    skill_match: bool
    region_match: bool | None  # None: the asset's region is unknown
    reasons: list[str] = field(default_factory=list)


def open_loads(session: Session) -> dict[int, int]:
    """Technician id → open work orders assigned to them."""
    rows = session.execute(
        select(WorkOrder.technician_id, func.count())
        .where(WorkOrder.technician_id.is_not(None), WorkOrder.state.in_(OPEN_WORK_ORDER_STATES))
        .group_by(WorkOrder.technician_id)
    ).all()
    return {int(tech_id): int(n) for tech_id, n in rows if tech_id is not None}


def suggest_technicians(
    session: Session,
    wo: WorkOrder,
    *,
    now: datetime,
    catalogue: FailureModeCatalogue | None = None,
    region_of: Callable[[Asset], str | None] = asset_region,
) -> list[Suggestion]:
    """Active technicians for `wo`, best first: available ones before unavailable, then
    by score (skill, kind, region, minus load), then fewer open work orders, then name."""
    catalogue = catalogue or default_catalogue()
    mode = catalogue.lookup(wo.failure_mode).id if wo.failure_mode in catalogue else None
    wanted_modes = {wo.failure_mode, *((mode,) if mode else ())}
    region = region_of(wo.asset)
    loads = open_loads(session)
    out: list[Suggestion] = []
    for tech in session.scalars(select(Technician).where(Technician.active.is_(True))):
        reasons: list[str] = []
        score = 0.0
        skills = {str(s) for s in tech.failure_modes}
        skill = bool(skills & wanted_modes)
        if skill:
            score += SKILL_POINTS
            reasons.append(f"skilled in {wo.failure_mode}")
        else:
            reasons.append(f"no skill for {wo.failure_mode}")
        if wo.asset.kind in {str(k) for k in tech.asset_kinds}:
            score += KIND_POINTS
            reasons.append(f"works on {wo.asset.kind}s")
        else:
            reasons.append(f"not listed for {wo.asset.kind}s")
        region_match: bool | None = None
        if region is None:
            reasons.append("asset region unknown: region not scored")
        else:
            region_match = tech.region == region
            if region_match:
                score += REGION_POINTS
                reasons.append(f"same region ({region})")
            else:
                reasons.append(f"other region ({tech.region or 'none'}, asset in {region})")
        load = loads.get(tech.id, 0)
        score -= LOAD_PENALTY * load
        reasons.append(f"{load} open work order{'s' if load != 1 else ''}")
        calendar = WorkingCalendar.read(tech.calendar)
        start = next_working_time(calendar, now, wo.resolve_by)
        if start is None:
            reasons.append("no working hours before the resolution deadline")
        elif start <= now:
            reasons.append("at work now")
        else:
            reasons.append(f"at work from {start.isoformat().replace('+00:00', 'Z')}")
        out.append(
            Suggestion(
                technician=tech,
                score=score,
                available=start is not None,
                available_from=start,
                open_work_orders=load,
                skill_match=skill,
                region_match=region_match,
                reasons=reasons,
            )
        )
    out.sort(key=lambda s: (not s.available, -s.score, s.open_work_orders, s.technician.name))
    return out
