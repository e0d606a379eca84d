"""The maintenance calendar at /maintenance: what the plans will open, and when.

Each active plan on each asset it covers, soonest first: the running-hours due point
turned into a date by the asset's recent rate, the calendar date, whichever comes first,
and the job already open for it. Filtered by customer and site; also as CSV
(`format=csv`).
No `from __future__ import annotations`: FastAPI resolves the local `Annotated` dependencies.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.csv_response import csv_filename, csv_response
from cloud.api.deps import NowDep
from cloud.dashboard._kit import PageKit
from cloud.dashboard.auth import Viewer
from cloud.db.models import Customer, Site
from cloud.domain.maintenance_calendar import PlannedService, planned_services

__all__ = ["CSV_COLUMNS", "build_router"]

CSV_COLUMNS = (
    "expected_at", "asset_id", "asset_name", "customer", "site", "plan_id", "plan",
    "task", "priority", "running_hours", "hours_per_day", "due_hours",
    "due_by_hours_at", "due_at", "open_work_order_id", "overdue",
)


def _group(planned: list[PlannedService]) -> list[tuple[str, list[PlannedService]]]:
    """Rows per customer and site, each group soonest first, groups by their soonest row."""
    groups: dict[str, list[PlannedService]] = {}
    for row in planned:
        label = " · ".join(x for x in (row.customer_name, row.site_name) if x)
        groups.setdefault(label, []).append(row)
    return list(groups.items())


def _csv_row(r: PlannedService) -> list[object]:
    return [
        r.expected_at, r.asset_id, r.asset_name, r.customer_name, r.site_name, r.plan_id,
        r.plan_name, r.task, r.priority, round(r.running_hours, 2),
        None if r.hours_per_day is None else round(r.hours_per_day, 2), r.due_hours,
        r.due_by_hours_at, r.due_at, r.open_work_order_id, r.overdue,
    ]


def build_router(kit: PageKit) -> APIRouter:
    """`/maintenance`."""
    router = APIRouter(include_in_schema=False)
    ViewerDep = Annotated[Viewer, Depends(kit.viewer)]
    ReadSessionDep = Annotated[Session, Depends(kit.read_session)]

    @router.get("/maintenance", response_model=None)
    def maintenance(
        request: Request,
        *,
        session: ReadSessionDep,
        now: NowDep,
        who: ViewerDep,
        customer: Annotated[str, Query(max_length=64)] = "",
        site: Annotated[str, Query(max_length=64)] = "",
        fmt: Annotated[str, Query(alias="format")] = "",
    ) -> Response:
        planned = planned_services(session, now, customer_id=customer or None,
                                   site_id=site or None)
        if fmt == "csv":
            return csv_response(csv_filename("maintenance", now), CSV_COLUMNS,
                                [_csv_row(r) for r in planned])
        customers = list(session.scalars(select(Customer).order_by(Customer.name)))
        sites = list(session.scalars(select(Site).order_by(Site.name)))
        return kit.render(
            request, "maintenance.html", who,
            groups=_group(planned),
            count=len(planned),
            customers=customers,
            sites=[s for s in sites if not customer or s.customer_id == customer],
            customer_id=customer,
            site_id=site,
            days_until=lambda at: None if at is None else (at - now).total_seconds() / 86400,
        )

    return router
