"""The KPI page (`/kpis`) and its table as CSV (`/kpis?format=csv`).
No `from __future__ import annotations`: FastAPI resolves the local `Annotated` dependencies.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from cloud.api.csv_response import csv_filename, csv_response
from cloud.api.deps import NowDep
from cloud.dashboard._kit import PageKit
from cloud.dashboard._kpi_views import kpi_page, parse_kpi_filters
from cloud.dashboard.auth import Viewer
from cloud.dashboard.i18n import gettext as _
from cloud.domain.errors import DomainError
from cloud.domain.kpis import KPI_COLUMNS, kpi_row

__all__ = ["build_router"]


def build_router(kit: PageKit) -> APIRouter:
    """`/kpis`."""
    router = APIRouter(include_in_schema=False)
    ViewerDep = Annotated[Viewer, Depends(kit.viewer)]
    ReadSessionDep = Annotated[Session, Depends(kit.read_session)]

    @router.get("/kpis", response_model=None)
    def kpis(
        request: Request,
        session: ReadSessionDep,
        now: NowDep,
        who: ViewerDep,
        fmt: Annotated[str, Query(alias="format")] = "",
    ) -> Response:
        try:
            filters = parse_kpi_filters(dict(request.query_params), now)
            view = kpi_page(session, filters, now)
        except DomainError as err:
            return kit.error_page(request, who, 400, _("Bad filter"), err.message)
        if fmt == "csv":
            rows = [kpi_row(k) for _label, k in view["series"]]
            rows.append(kpi_row(view["total"]))
            return csv_response(csv_filename("kpis", now), KPI_COLUMNS, rows)
        return kit.render(request, "kpis.html", who, **view)

    return router
