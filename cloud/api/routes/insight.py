"""/cases, /alerts/{id}/similar-cases and /reports: the fault case library and the filed
monthly operating reports (made on demand by the dashboard, see docs/dashboard.md)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from cloud.api.deps import SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import ReaderDep
from cloud.api.schemas.common import MAX_DB_INT, Page
from cloud.api.schemas.insight import (
    CasePublic,
    CaseQuery,
    ReportPublic,
    ReportQuery,
    SimilarCasePublic,
    SimilarCaseQuery,
)
from cloud.domain import cases as cases_domain
from cloud.domain import reports as reports_domain
from cloud.domain.alerts import get_alert

router = APIRouter(tags=["insight"], responses=ERROR_RESPONSES)
DbId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


@router.get("/cases", response_model=Page[CasePublic])
def list_cases(
    session: SessionDep, _: ReaderDep, q: Annotated[CaseQuery, Query()]
) -> Page[CasePublic]:
    """Fault cases, newest closed first."""
    found = cases_domain.list_cases(
        session,
        text=q.q,
        failure_mode=q.failure_mode,
        asset_kind=q.asset_kind,
        limit=q.limit,
        offset=q.offset,
    )
    return Page[CasePublic](
        items=[CasePublic.model_validate(c) for c in found.items],
        total=found.total,
        limit=q.limit,
        offset=q.offset,
    )


@router.get("/cases/{case_id}", response_model=CasePublic)
def get_case(session: SessionDep, _: ReaderDep, case_id: DbId) -> CasePublic:
    return CasePublic.model_validate(cases_domain.get_case(session, case_id))


@router.get("/alerts/{alert_id}/similar-cases", response_model=list[SimilarCasePublic])
def similar_cases(
    session: SessionDep, _: ReaderDep, alert_id: DbId, q: Annotated[SimilarCaseQuery, Query()]
) -> list[SimilarCasePublic]:
    """The past cases most like this alert: same failure mode and asset kind first, then
    the nearest evidence."""
    alert = get_alert(session, alert_id)
    return [
        SimilarCasePublic.model_validate(s)
        for s in cases_domain.similar_cases(session, alert, limit=q.limit)
    ]


@router.get("/reports", response_model=Page[ReportPublic])
def list_reports(
    session: SessionDep, _: ReaderDep, q: Annotated[ReportQuery, Query()]
) -> Page[ReportPublic]:
    """Filed operating reports, newest period first."""
    found = reports_domain.list_reports(
        session, kind=q.kind, subject_id=q.subject_id, limit=q.limit, offset=q.offset
    )
    return Page[ReportPublic](
        items=[ReportPublic.model_validate(r) for r in found.items],
        total=found.total,
        limit=q.limit,
        offset=q.offset,
    )


@router.get("/reports/{report_id}", response_model=ReportPublic)
def get_report(session: SessionDep, _: ReaderDep, report_id: DbId) -> ReportPublic:
    return ReportPublic.model_validate(reports_domain.get_report(session, report_id))


def _attachment(report_id: int, kind: str, subject: str, month: str, ext: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", subject)
    return f'attachment; filename="ironwatch-report-{report_id}-{kind}-{safe}-{month}.{ext}"'


@router.get(
    "/reports/{report_id}/csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def report_csv(session: SessionDep, _: ReaderDep, report_id: DbId) -> Response:
    """The report's CSV (UTF-8 with a byte-order mark, for spreadsheets)."""
    r = reports_domain.get_report(session, report_id)
    return Response(
        r.csv.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": _attachment(
                r.id, r.kind, r.subject_id, f"{r.period_start:%Y-%m}", "csv"
            )
        },
    )


@router.get(
    "/reports/{report_id}/html",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
def report_html(session: SessionDep, _: ReaderDep, report_id: DbId) -> Response:
    """The report as the printable HTML document it was filed as."""
    r = reports_domain.get_report(session, report_id)
    return Response(
        r.html.encode("utf-8"),
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Disposition": _attachment(
                r.id, r.kind, r.subject_id, f"{r.period_start:%Y-%m}", "html"
            )
        },
    )
