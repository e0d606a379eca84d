"""The alerts list (`/alerts`) and the alert page with the engineer's actions on it.

Every action is a POST form (CSRF-checked by the middleware), allowed by role as the REST
API allows it (`cloud.dashboard.auth.ACTION_ROLES`), done through the same domain
function the API calls, and recorded in the alert's history with who and when. After an
action the browser is sent back to the alert page with a message; a refusal (409, 422 ...)
is shown on the page, never as the API's JSON.
No `from __future__ import annotations`: FastAPI resolves the local `Annotated` dependencies.
"""

import logging
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.context import ApiContext
from cloud.api.csv_response import csv_filename, list_csv_response
from cloud.api.deps import ContextDep, NowDep, get_context
from cloud.api.schemas.common import MAX_DB_INT
from cloud.dashboard import zones
from cloud.dashboard._alert_detail import alert_actions, history_text, verdict_views
from cloud.dashboard._kit import PageKit, form_of, multi_params
from cloud.dashboard._views import SEVERITY_ORDER, alert_row, work_order_card
from cloud.dashboard.auth import Viewer
from cloud.dashboard.i18n import gettext as _
from cloud.db.models import Alert, WorkOrder
from cloud.domain import alert_actions as actions_domain
from cloud.domain import alerts as alerts_domain
from cloud.domain import cases as cases_domain
from cloud.domain import listing
from cloud.domain import verdicts as verdicts_domain
from cloud.domain.errors import ConflictError, DomainError, InvalidInputError, NotFoundError
from cloud.domain.vocabulary import PRIORITIES

__all__ = ["build_router"]

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000


def _flash_text(code: str | None) -> str | None:
    messages = {
        "acknowledged": _("Alert acknowledged."),
        "verdict": _("Verdict recorded."),
        "comment": _("Comment added."),
        "work_order": _("Work order opened."),
        "assigned": _("Work order assigned."),
        "snapshot": _(
            "Snapshot requested. It appears on the asset page once the gateway sends it."
        ),
    }
    return messages.get(code or "")


def _status_of(err: DomainError) -> int:
    if isinstance(err, NotFoundError):
        return 404
    if isinstance(err, ConflictError):
        return 409
    return 422


def build_router(kit: PageKit) -> APIRouter:
    """`/alerts`, `/alerts/{id}` and the action forms posted from it."""
    router = APIRouter(include_in_schema=False)
    ViewerDep = Annotated[Viewer, Depends(kit.viewer)]
    ReadSessionDep = Annotated[Session, Depends(kit.read_session)]

    def alert_page(
        request: Request,
        session: Session,
        alert: Alert,
        who: Viewer,
        *,
        flash: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        context = get_context(request)
        now = context.clock()
        # The plant's times in the plant's zone, when its site names one.
        plant_zone = zones.asset_zone(alert.asset)
        if plant_zone is not None:
            zones.use_zone(plant_zone)
        orders = session.scalars(
            select(WorkOrder).where(WorkOrder.alert_id == alert.id).order_by(WorkOrder.id)
        ).all()
        page = kit.render(
            request,
            "alert.html",
            who,
            alert=alert_row(alert),
            events=[(e, history_text(e)) for e in alert.events],
            orders=[work_order_card(w, now) for w in orders],
            resolution=(alert.resolved_at, alert.resolved_by, alert.resolution_note),
            acknowledged=(alert.acknowledged_at, alert.acknowledged_by),
            verdicts=verdict_views(session, alert),
            actions=alert_actions(
                session,
                alert,
                who,
                can_snapshot=context.request_snapshot is not None,
                catalogue=context.catalogue,
            ),
            priorities=PRIORITIES,
            similar=cases_domain.similar_cases(session, alert),
            flash=_flash_text(flash),
            error=error,
        )
        page.status_code = status
        return page

    def not_found(request: Request, who: Viewer, alert_id: int) -> HTMLResponse:
        message = _("There is no alert #%(id)s.") % {"id": alert_id}
        return kit.error_page(request, who, 404, _("Alert not found"), message)

    @router.get("/alerts", response_model=None)
    def alerts_list(
        request: Request,
        session: ReadSessionDep,
        context: ContextDep,
        now: NowDep,
        who: ViewerDep,
    ) -> Response:
        params = multi_params(request)
        try:
            query = listing.parse_query(listing.ALERTS, params, ignore=frozenset({"format"}))
        except DomainError as err:
            return kit.error_page(request, who, 400, _("Bad filter"), err.message)
        if params.get("format") == ["csv"]:
            return list_csv_response(
                context.session_factory,
                listing.ALERTS,
                query,
                csv_filename("alerts", now),
            )
        rows, total = listing.fetch_page(session, listing.ALERTS, query)
        return kit.render(
            request,
            "alerts.html",
            who,
            spec=listing.ALERTS,
            query=query,
            rows=[alert_row(a) for a in rows],
            total=total,
            severities=SEVERITY_ORDER,
        )

    @router.get("/alerts/{alert_id}", response_class=HTMLResponse)
    def alert_detail(
        request: Request,
        alert_id: int,
        session: ReadSessionDep,
        who: ViewerDep,
        done: str | None = None,
    ) -> HTMLResponse:
        # An id beyond the column's range is not an alert either (and must not reach the driver).
        alert = session.get(Alert, alert_id) if 1 <= alert_id <= MAX_DB_INT else None
        if alert is None:
            return not_found(request, who, alert_id)
        return alert_page(request, session, alert, who, flash=done)

    async def act(
        request: Request,
        *,
        context: ApiContext,
        alert_id: int,
        who: Viewer,
        action: str,
        do: Callable[[Session, dict[str, str]], str],
    ) -> Response:
        """Check the role, run `do` in a transaction, then show the alert page again."""
        if not who.may(action):
            log.warning("refused %s on alert %s by %s (%s)", action, alert_id, who.name, who.role)
            return kit.error_page(
                request,
                who,
                403,
                _("Not allowed"),
                _("Your role (%(role)s) may not do this. Sign in with a token that may.")
                % {"role": who.role},
            )
        if not 1 <= alert_id <= MAX_DB_INT:
            return not_found(request, who, alert_id)
        form = await form_of(request)
        with context.session_factory() as session:
            try:
                flash = do(session, form)
                session.commit()
            except DomainError as err:
                session.rollback()
                alert = session.get(Alert, alert_id)
                if alert is None:
                    return not_found(request, who, alert_id)
                return alert_page(
                    request, session, alert, who, error=err.message, status=_status_of(err)
                )
        log.info("%s on alert %s by %s", action, alert_id, who.name)
        return RedirectResponse(f"/alerts/{alert_id}?done={quote(flash)}", status_code=303)

    @router.post("/alerts/{alert_id}/acknowledge")
    async def acknowledge(
        request: Request, alert_id: int, context: ContextDep, now: NowDep, who: ViewerDep
    ) -> Response:
        def do(session: Session, form: dict[str, str]) -> str:
            alerts_domain.acknowledge(session, alert_id, actor=who.name, now=now)
            return "acknowledged"

        return await act(
            request, context=context, alert_id=alert_id, who=who, action="acknowledge", do=do
        )

    @router.post("/alerts/{alert_id}/verdict")
    async def verdict(
        request: Request, alert_id: int, context: ContextDep, now: NowDep, who: ViewerDep
    ) -> Response:
        def do(session: Session, form: dict[str, str]) -> str:
            kind = form.get("verdict", "")
            reason = form.get("reason", "").strip()
            if not reason:
                alerts_domain.get_alert(session, alert_id)
                raise InvalidInputError(_("Give a reason for the verdict."))
            if len(reason) > MAX_REASON_CHARS:
                raise InvalidInputError(_("The reason is longer than 2000 characters."))
            verdicts_domain.record_verdict(
                session,
                alert_id,
                verdict=kind,  # type: ignore[arg-type]  # checked by the domain
                actor=who.name,
                now=now,
                note=reason,
                corrected_failure_mode=form.get("corrected_failure_mode") or None,
            )
            return "verdict"

        return await act(
            request, context=context, alert_id=alert_id, who=who, action="verdict", do=do
        )

    @router.post("/alerts/{alert_id}/comment")
    async def comment(
        request: Request, alert_id: int, context: ContextDep, now: NowDep, who: ViewerDep
    ) -> Response:
        def do(session: Session, form: dict[str, str]) -> str:
            actions_domain.comment(
                session, alert_id, actor=who.name, now=now, text=form.get("text", "")
            )
            return "comment"

        return await act(
            request, context=context, alert_id=alert_id, who=who, action="comment", do=do
        )

    @router.post("/alerts/{alert_id}/work-order")
    async def open_work_order(
        request: Request, alert_id: int, context: ContextDep, now: NowDep, who: ViewerDep
    ) -> Response:
        def do(session: Session, form: dict[str, str]) -> str:
            actions_domain.open_work_order(
                session,
                alert_id,
                priority=form.get("priority", ""),  # type: ignore[arg-type]  # domain checks
                actor=who.name,
                now=now,
                note=form.get("note", ""),
                policy=context.policy,
                catalogue=context.catalogue,
            )
            return "work_order"

        return await act(
            request, context=context, alert_id=alert_id, who=who, action="open_work_order", do=do
        )

    @router.post("/alerts/{alert_id}/assign")
    async def assign(
        request: Request, alert_id: int, context: ContextDep, now: NowDep, who: ViewerDep
    ) -> Response:
        def do(session: Session, form: dict[str, str]) -> str:
            alert = alerts_domain.get_alert(session, alert_id)
            try:
                wo_id = int(form.get("work_order_id", ""))
            except ValueError as err:
                raise InvalidInputError(_("No work order was chosen.")) from err
            wo = session.get(WorkOrder, wo_id) if 1 <= wo_id <= MAX_DB_INT else None
            if wo is None or wo.asset_id != alert.asset_id:
                message = _("Work order WO-%(id)s is not one of this alert's.") % {"id": wo_id}
                raise NotFoundError(message)
            actions_domain.assign_work_order(
                session, wo.id, assignee=form.get("assignee", ""), actor=who.name, now=now
            )
            return "assigned"

        return await act(
            request, context=context, alert_id=alert_id, who=who, action="assign", do=do
        )

    @router.post("/alerts/{alert_id}/snapshot")
    async def snapshot(
        request: Request, alert_id: int, context: ContextDep, who: ViewerDep
    ) -> Response:
        def do(session: Session, form: dict[str, str]) -> str:
            alert = alerts_domain.get_alert(session, alert_id)
            if context.request_snapshot is None:
                raise ConflictError(_("This service has no command channel to the gateways."))
            point = alert.evidence.get("point") if isinstance(alert.evidence, dict) else None
            try:
                context.request_snapshot(
                    alert.asset_id, point if isinstance(point, str) else None, who.name
                )
            except Exception as err:  # the broker link is down, the asset has no gateway, ...
                log.warning("snapshot request for %s failed: %s", alert.asset_id, err)
                raise ConflictError(
                    _("The command could not be sent: %(error)s") % {"error": err}
                ) from err
            return "snapshot"

        return await act(
            request, context=context, alert_id=alert_id, who=who, action="snapshot", do=do
        )

    return router
