"""/technicians: the roster the service desk dispatches from."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select

from cloud.api.deps import NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import ReaderDep, ServiceDeskDep
from cloud.api.schemas import Page
from cloud.api.schemas.common import MAX_DB_INT
from cloud.api.schemas.dispatch import (
    CalendarInput,
    SuggestionPublic,
    TechnicianCreate,
    TechnicianPublic,
    TechnicianUpdate,
)
from cloud.api.schemas.queries import TechnicianQuery
from cloud.db.models import Technician
from cloud.domain.technicians import (
    Suggestion,
    WorkingCalendar,
    get_technician,
    open_loads,
)

router = APIRouter(prefix="/technicians", tags=["technicians"], responses=ERROR_RESPONSES)
TechnicianId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


def technician_public(tech: Technician, load: int = 0) -> TechnicianPublic:
    """A technician with the number of open work orders assigned to them."""
    return TechnicianPublic.model_validate(
        {
            "id": tech.id,
            "name": tech.name,
            "failure_modes": list(tech.failure_modes),
            "asset_kinds": list(tech.asset_kinds),
            "region": tech.region,
            "calendar": dict(tech.calendar),
            "active": tech.active,
            "open_work_orders": load,
        }
    )


def suggestion_public(s: Suggestion) -> SuggestionPublic:
    """A ranked suggestion as the API shows it."""
    return SuggestionPublic(
        technician=technician_public(s.technician, s.open_work_orders),
        score=s.score,
        available=s.available,
        available_from=s.available_from,
        open_work_orders=s.open_work_orders,
        skill_match=s.skill_match,
        region_match=s.region_match,
        reasons=s.reasons,
    )


def _calendar(body: CalendarInput) -> dict[str, Any]:
    # Validated once more by the domain's type (time zone names, shift order).
    return WorkingCalendar.read(body.model_dump(mode="json")).model_dump(mode="json")


@router.get("", response_model=Page[TechnicianPublic])
def list_technicians(
    *, session: SessionDep, _: ReaderDep, q: Annotated[TechnicianQuery, Query()]
) -> Page[TechnicianPublic]:
    """The roster, by name; filter by region, skill (failure mode), asset kind, active."""
    query = select(Technician).order_by(Technician.name, Technician.id)
    if q.region:
        query = query.where(Technician.region.in_(q.region))
    if q.active is not None:
        query = query.where(Technician.active.is_(q.active))
    loads = open_loads(session)
    rows = session.scalars(query).all()
    # Skills are JSON lists: filtered here, portable across SQLite and PostgreSQL.
    if q.failure_mode:
        rows = [t for t in rows if set(q.failure_mode) & {str(m) for m in t.failure_modes}]
    if q.asset_kind:
        rows = [t for t in rows if set(q.asset_kind) & {str(k) for k in t.asset_kinds}]
    page = rows[q.offset : q.offset + q.limit]
    return Page[TechnicianPublic](
        items=[technician_public(t, loads.get(t.id, 0)) for t in page],
        total=len(rows), limit=q.limit, offset=q.offset,
    )


@router.post("", response_model=TechnicianPublic, status_code=201)
def create_technician(
    body: TechnicianCreate, session: SessionDep, now: NowDep, _: ServiceDeskDep
) -> TechnicianPublic:
    """Add a technician to the roster."""
    tech = Technician(
        name=body.name,
        failure_modes=list(body.failure_modes),
        asset_kinds=list(body.asset_kinds),
        region=body.region,
        calendar=_calendar(body.calendar),
        active=body.active,
        created_at=now,
        updated_at=now,
    )
    session.add(tech)
    session.flush()
    return technician_public(tech)


@router.get("/{technician_id}", response_model=TechnicianPublic)
def get_one(technician_id: TechnicianId, session: SessionDep, _: ReaderDep) -> TechnicianPublic:
    """One technician."""
    tech = get_technician(session, technician_id)
    return technician_public(tech, open_loads(session).get(tech.id, 0))


@router.patch("/{technician_id}", response_model=TechnicianPublic)
def update_technician(
    technician_id: TechnicianId,
    body: TechnicianUpdate,
    session: SessionDep,
    now: NowDep,
    _: ServiceDeskDep,
) -> TechnicianPublic:
    """Change skills, region, calendar or name; `active: false` takes them off dispatch."""
    tech = get_technician(session, technician_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    for name in ("name", "region", "active"):
        if name in changes:
            setattr(tech, name, changes[name])
    if body.failure_modes is not None:
        tech.failure_modes = list(body.failure_modes)
    if body.asset_kinds is not None:
        tech.asset_kinds = list(body.asset_kinds)
    if body.calendar is not None:
        tech.calendar = _calendar(body.calendar)
    tech.updated_at = now
    session.flush()
    return technician_public(tech, open_loads(session).get(tech.id, 0))


@router.delete("/{technician_id}", status_code=204)
def delete_technician(
    technician_id: TechnicianId, session: SessionDep, _: ServiceDeskDep
) -> Response:
    """Remove a technician; their work orders keep the name and lose the link."""
    session.delete(get_technician(session, technician_id))
    session.flush()
    return Response(status_code=204)
