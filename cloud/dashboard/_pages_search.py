"""Search (`/search?q=`) across assets, alerts and work orders, and the assets list
(`/assets`); both also as CSV (`format=csv`).
No `from __future__ import annotations`: FastAPI resolves the local `Annotated` dependencies.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from cloud.api.csv_response import csv_filename, list_csv_response, search_csv_response
from cloud.api.deps import ContextDep, NowDep
from cloud.dashboard._kit import PageKit, multi_params
from cloud.dashboard.auth import Viewer
from cloud.dashboard.i18n import gettext as _
from cloud.domain import listing
from cloud.domain.errors import DomainError
from cloud.domain.search import SearchResults, search

__all__ = ["build_router"]

HITS_PER_KIND = 50


def build_router(kit: PageKit) -> APIRouter:
    """`/search` and `/assets`."""
    router = APIRouter(include_in_schema=False)
    ViewerDep = Annotated[Viewer, Depends(kit.viewer)]
    ReadSessionDep = Annotated[Session, Depends(kit.read_session)]

    @router.get("/search", response_model=None)
    def search_page(
        request: Request,
        *,
        session: ReadSessionDep,
        now: NowDep,
        who: ViewerDep,
        q: str = "",
        fmt: Annotated[str, Query(alias="format")] = "",
    ) -> Response:
        error = None
        try:
            results = search(session, q, limit=HITS_PER_KIND)
        except DomainError as err:
            results, error = SearchResults(query=q[:200], terms=()), err.message
        if fmt == "csv" and error is None:
            return search_csv_response(results, csv_filename("search", now))
        page = kit.render(request, "search.html", who, results=results, q=q, error=error)
        if error is not None:
            page.status_code = 400
        return page

    @router.get("/assets", response_model=None)
    def assets_list(
        request: Request,
        session: ReadSessionDep,
        context: ContextDep,
        now: NowDep,
        who: ViewerDep,
    ) -> Response:
        params = multi_params(request)
        try:
            query = listing.parse_query(listing.ASSETS, params, ignore=frozenset({"format"}))
        except DomainError as err:
            return kit.error_page(request, who, 400, _("Bad filter"), err.message)
        if params.get("format") == ["csv"]:
            return list_csv_response(
                context.session_factory, listing.ASSETS, query, csv_filename("assets", now)
            )
        rows, total = listing.fetch_page(session, listing.ASSETS, query)
        return kit.render(
            request, "assets.html", who, spec=listing.ASSETS, query=query, rows=rows, total=total
        )

    return router
