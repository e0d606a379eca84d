"""The fault case library: `/cases` (search and filters) and `/cases/{id}`.
No `from __future__ import annotations`: FastAPI resolves the local `Annotated` dependencies.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.schemas.common import MAX_DB_INT
from cloud.dashboard._kit import PageKit
from cloud.dashboard.auth import Viewer
from cloud.dashboard.evidence import read_evidence
from cloud.dashboard.i18n import gettext as _
from cloud.db.models import FaultCase
from cloud.domain import cases as cases_domain
from cloud.domain.errors import DomainError
from cloud.domain.vocabulary import ASSET_KINDS

__all__ = ["build_router"]

CASES_PER_PAGE = 100


def build_router(kit: PageKit) -> APIRouter:
    """`/cases` and `/cases/{id}`."""
    router = APIRouter(include_in_schema=False)
    ViewerDep = Annotated[Viewer, Depends(kit.viewer)]
    ReadSessionDep = Annotated[Session, Depends(kit.read_session)]

    @router.get("/cases", response_class=HTMLResponse)
    def cases(
        request: Request,
        *,
        session: ReadSessionDep,
        who: ViewerDep,
        q: Annotated[str, Query(max_length=200)] = "",
        failure_mode: Annotated[str, Query(max_length=64)] = "",
        asset_kind: Annotated[str, Query(max_length=16)] = "",
    ) -> HTMLResponse:
        try:
            page = cases_domain.list_cases(
                session,
                text=q.strip() or None,
                failure_mode=failure_mode or None,
                asset_kind=asset_kind or None,
                limit=CASES_PER_PAGE,
            )
        except DomainError as err:
            return kit.error_page(request, who, 400, _("Bad filter"), err.message)
        modes = session.scalars(
            select(FaultCase.failure_mode).distinct().order_by(FaultCase.failure_mode)
        ).all()
        return kit.render(
            request,
            "cases.html",
            who,
            cases=page.items,
            total=page.total,
            q=q,
            failure_mode=failure_mode,
            asset_kind=asset_kind,
            modes=modes,
            kinds=ASSET_KINDS,
        )

    @router.get("/cases/{case_id}", response_class=HTMLResponse)
    def case_page(
        request: Request, case_id: int, session: ReadSessionDep, who: ViewerDep
    ) -> HTMLResponse:
        case = session.get(FaultCase, case_id) if 1 <= case_id <= MAX_DB_INT else None
        if case is None:
            message = _("There is no case #%(id)s.") % {"id": case_id}
            return kit.error_page(request, who, 404, _("Case not found"), message)
        return kit.render(
            request, "case.html", who, case=case, evidence=read_evidence(case.evidence)
        )

    return router
