"""Operating reports: made on demand (`/reports/asset/{id}?month=2026-11`,
`/reports/customer/{id}`; `format=csv` for the CSV), the filed monthly ones
(`/reports`, `/reports/{n}`, `/reports/{n}/csv`), and the rendering the monthly job uses.
No `from __future__ import annotations`: FastAPI resolves the local `Annotated` dependencies.
"""

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.context import ApiContext
from cloud.api.csv_response import csv_filename, csv_response
from cloud.api.deps import ContextDep, NowDep
from cloud.dashboard._kit import PageKit
from cloud.dashboard._reports import (
    AssetReport,
    CustomerReport,
    asset_report,
    customer_report,
    report_csv,
)
from cloud.dashboard.auth import Viewer
from cloud.dashboard.i18n import gettext as _
from cloud.db.models import Asset, Customer
from cloud.domain import reports as reports_domain
from cloud.domain.errors import DomainError, NotFoundError
from cloud.domain.export import csv_chunks

__all__ = ["build_router", "render_report_files"]

ONE_DAY = timedelta(days=1)
REPORTS_PER_PAGE = 100


def _body_context(report: AssetReport | CustomerReport) -> dict[str, Any]:
    kind = "asset" if isinstance(report, AssetReport) else "customer"
    names: dict[str, str] = {}
    if isinstance(report, CustomerReport):
        names = {m.asset.id: m.asset.name or m.asset.id for m in report.machines}
    return {"report": report, "kind": kind, "names": names, "one_day": ONE_DAY}


def render_report_files(
    templates: Jinja2Templates, report: AssetReport | CustomerReport, *, lang: str = "en"
) -> tuple[str, str]:
    """The report as a standalone printable HTML document and as CSV text (UTF-8, BOM)."""
    title = report.subject.name
    html = templates.env.get_template("report_doc.html").render(
        title=title, lang=lang, **_body_context(report)
    )
    header, rows = report_csv(report)
    csv_text = b"".join(csv_chunks(header, rows)).decode("utf-8")
    return html, csv_text


def build_router(kit: PageKit) -> APIRouter:
    """`/reports` and the report pages."""
    router = APIRouter(include_in_schema=False)
    ViewerDep = Annotated[Viewer, Depends(kit.viewer)]
    ReadSessionDep = Annotated[Session, Depends(kit.read_session)]

    def show(
        request: Request,
        who: Viewer,
        *,
        report: AssetReport | CustomerReport,
        month: str | None,
        fmt: str,
        now: datetime,
    ) -> Response:
        if fmt == "csv":
            header, rows = report_csv(report)
            name = f"report-{report.subject.kind}-{report.subject.id}-{report.start:%Y-%m}"
            return csv_response(csv_filename(name, now), header, rows)
        query = {"month": month} if month else {}
        return kit.render(request, "report.html", who, query=query, **_body_context(report))

    @router.get("/reports", response_class=HTMLResponse)
    def reports(
        request: Request,
        session: ReadSessionDep,
        now: NowDep,
        who: ViewerDep,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> HTMLResponse:
        page = reports_domain.list_reports(session, limit=REPORTS_PER_PAGE, offset=offset)
        assets = session.execute(select(Asset.id, Asset.name).order_by(Asset.id)).all()
        customers = session.execute(select(Customer.id, Customer.name).order_by(Customer.id)).all()
        return kit.render(
            request,
            "reports.html",
            who,
            reports=page.items,
            total=page.total,
            assets=[(a.id, a.name or a.id) for a in assets],
            customers=[(c.id, c.name) for c in customers],
            month=now.strftime("%Y-%m"),
        )

    @router.get("/reports/make", response_model=None)
    def make(request: Request, who: ViewerDep, subject: str = "", month: str = "") -> Response:
        kind, _sep, subject_id = subject.partition(":")
        if kind not in reports_domain.REPORT_KINDS or not subject_id:
            return kit.error_page(
                request, who, 400, _("Bad request"), _("Choose an asset or a customer.")
            )
        target = f"/reports/{kind}/{quote(subject_id, safe='')}"
        if month:
            target += f"?month={quote(month[:20], safe='')}"
        return RedirectResponse(target, status_code=303)

    def on_demand(
        request: Request,
        who: Viewer,
        build: Callable[..., Any],
        subject_id: str,
        *,
        session: Session,
        context: ApiContext,
        month: str,
        fmt: str,
        now: datetime,
        missing: tuple[str, str],
    ) -> Response:
        """One subject's report for a month, as a page or CSV; 404 or 400 as a page."""
        try:
            start, end = reports_domain.month_period(month or None, now)
            report = build(session, context.telemetry, subject_id, start=start, end=end, now=now)
        except NotFoundError:
            return kit.error_page(request, who, 404, *missing)
        except DomainError as err:
            return kit.error_page(request, who, 400, _("Bad request"), err.message)
        return show(request, who, report=report, month=month, fmt=fmt, now=now)

    @router.get("/reports/asset/{asset_id}", response_model=None)
    def asset_page(
        request: Request,
        asset_id: str,
        *,
        session: ReadSessionDep,
        context: ContextDep,
        now: NowDep,
        who: ViewerDep,
        month: str = "",
        fmt: Annotated[str, Query(alias="format")] = "",
    ) -> Response:
        return on_demand(
            request, who, asset_report, asset_id,
            session=session, context=context, month=month, fmt=fmt, now=now,
            missing=(_("Asset not found"), _("There is no such asset.")),
        )

    @router.get("/reports/customer/{customer_id}", response_model=None)
    def customer_page(
        request: Request,
        customer_id: str,
        *,
        session: ReadSessionDep,
        context: ContextDep,
        now: NowDep,
        who: ViewerDep,
        month: str = "",
        fmt: Annotated[str, Query(alias="format")] = "",
    ) -> Response:
        return on_demand(
            request, who, customer_report, customer_id,
            session=session, context=context, month=month, fmt=fmt, now=now,
            missing=(_("Customer not found"), _("There is no such customer.")),
        )

    @router.get("/reports/{report_id:int}", response_model=None)
    def filed(
        request: Request, report_id: int, session: ReadSessionDep, who: ViewerDep
    ) -> Response:
        try:
            report = reports_domain.get_report(session, report_id)
        except NotFoundError:
            return kit.error_page(
                request, who, 404, _("Report not found"), _("There is no such report.")
            )
        return HTMLResponse(report.html)

    @router.get("/reports/{report_id:int}/csv", response_model=None)
    def filed_csv(
        request: Request, report_id: int, session: ReadSessionDep, who: ViewerDep
    ) -> Response:
        try:
            report = reports_domain.get_report(session, report_id)
        except NotFoundError:
            return kit.error_page(
                request, who, 404, _("Report not found"), _("There is no such report.")
            )
        subject = re.sub(r"[^A-Za-z0-9._-]", "_", report.subject_id)
        name = f"ironwatch-report-{report.kind}-{subject}-{report.period_start:%Y-%m}.csv"
        return Response(
            report.csv.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return router
