"""The maintenance calendar at /maintenance: what the plans will open, and when.

Each active plan on each asset it covers, soonest first: the running-hours due point
turned into a date by the asset's recent rate, the calendar date, whichever comes first,
and the job already open for it. Filtered by customer and site.
No `from __future__ import annotations`: FastAPI resolves the handlers' annotations.
"""

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import NowDep
from cloud.dashboard.auth import Viewer
from cloud.db.models import Customer, Site
from cloud.domain.maintenance_calendar import PlannedService, planned_services

__all__ = ["maintenance_router"]

Render = Callable[..., HTMLResponse]


def _group(planned: list[PlannedService]) -> list[tuple[str, list[PlannedService]]]:
    """Rows per customer and site, each group soonest first, groups by their soonest row."""
    groups: dict[str, list[PlannedService]] = {}
    for row in planned:
        label = " · ".join(x for x in (row.customer_name, row.site_name) if x) or ""
        groups.setdefault(label, []).append(row)
    return list(groups.items())


def maintenance_router(
    render: Render,
    viewer: Callable[..., Viewer],
    session: Callable[..., Iterator[Session]],
) -> APIRouter:
    """The page, rendered by the dashboard's `render` for its signed-in viewer."""
    router = APIRouter(include_in_schema=False)

    @router.get("/maintenance", response_class=HTMLResponse)
    def maintenance(
        request: Request,
        *,
        now: NowDep,
        who: Annotated[Viewer, Depends(viewer)],
        db: Annotated[Session, Depends(session)],
        customer: str = "",
        site: str = "",
    ) -> HTMLResponse:
        customers = list(db.scalars(select(Customer).order_by(Customer.name)))
        sites = list(db.scalars(select(Site).order_by(Site.name)))
        planned = planned_services(db, now, customer_id=customer or None, site_id=site or None)
        context: dict[str, Any] = {
            "groups": _group(planned),
            "count": len(planned),
            "customers": customers,
            "sites": [s for s in sites if not customer or s.customer_id == customer],
            "customer_id": customer,
            "site_id": site,
            "days_until": lambda at: None if at is None else (at - now).total_seconds() / 86400,
        }
        return render(request, "maintenance.html", who, **context)

    return router
