"""The work-order page: dispatch (suggested technicians, assign), the lifecycle steps the
current state allows, the outcome form on completion, parts availability and history.

Forms post back here; each write runs the same domain function as the REST API in one
transaction, with the signed-in viewer as the actor. Only the service desk and admins may
move work orders, as in the API. No `from __future__ import annotations`: FastAPI resolves
the handlers' `Annotated` dependencies when they are defined.
"""

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from cloud.api.context import ApiContext
from cloud.api.deps import ContextDep, NowDep
from cloud.api.schemas.common import MAX_DB_INT
from cloud.dashboard._kit import PageKit
from cloud.dashboard._views import work_order_card
from cloud.dashboard.auth import Viewer
from cloud.dashboard.csrf import MAX_FORM_BYTES
from cloud.dashboard.i18n import N_
from cloud.dashboard.i18n import gettext as _
from cloud.db.models import WorkOrder
from cloud.domain import parts as parts_domain
from cloud.domain import technicians as technicians_domain
from cloud.domain import workorders
from cloud.domain.errors import DomainError, InvalidInputError
from cloud.domain.vocabulary import WORK_ORDER_STATES

__all__ = ["DISPATCH_ROLES", "build_router"]

log = logging.getLogger(__name__)

# Who may dispatch and move work orders: the API's service-desk routes allow the same.
DISPATCH_ROLES = frozenset({"service_desk", "admin"})
# The lifecycle buttons, in the order a job goes; `done` and `follow_up` have forms.
STEP_LABELS = {
    "accepted": N_("Accept"),
    "assigned": N_("Hand back to assigned"),
    "open": N_("Hand back to open"),
    "in_progress": N_("Start on site"),
    "done": N_("Complete"),
    "follow_up": N_("Schedule follow-up visit"),
    "closed": N_("Close"),
    "cancelled": N_("Cancel"),
}
_STATUS = {"not_found": 404, "invalid_transition": 409, "conflict": 409}

Render = Callable[..., HTMLResponse]
ErrorPage = Callable[[Request, Viewer | None, int, str, str], HTMLResponse]


def _form_value(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0].strip()


async def _read_form(request: Request) -> dict[str, list[str]]:
    # The CSRF middleware has read and bounded the body already; a few short fields.
    body = await request.body()
    return parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))


def _outcome_from(form: dict[str, list[str]]) -> workorders.Outcome:
    used: dict[str, int] = {}
    for key, values in form.items():
        if key.startswith("used:") and values and values[0].strip():
            try:
                quantity = int(values[0])
            except ValueError as err:
                raise InvalidInputError(_("Parts used must be whole numbers.")) from err
            if quantity > 0:
                used[key.removeprefix("used:")] = quantity
    downtime = _form_value(form, "downtime_h")
    try:
        downtime_h = float(downtime) if downtime else None
    except ValueError as err:
        raise InvalidInputError(_("Downtime must be a number of hours.")) from err
    cause, action = _form_value(form, "cause_found"), _form_value(form, "action_taken")
    if not cause or not action:
        raise InvalidInputError(_("Say what caused the fault and what was done."))
    return workorders.Outcome(
        cause_found=cause[:2000],
        action_taken=action[:2000],
        parts_used=used,
        downtime_h=downtime_h,
        first_time_fix=_form_value(form, "first_time_fix") == "yes",
    )


def _visit_date(raw: str) -> datetime:
    try:
        day = date.fromisoformat(raw)
    except ValueError as err:
        raise InvalidInputError(_("Give the date of the return visit.")) from err
    return datetime.combine(day, time(8), UTC)


def build_router(kit: PageKit) -> APIRouter:
    """`/work-orders/{id}`: the work-order page and its forms."""
    router = APIRouter(include_in_schema=False)
    ViewerDep = Annotated[Viewer, Depends(kit.viewer)]
    render: Render = kit.render
    error_page: ErrorPage = kit.error_page

    def load(session: Session, work_order_id: int) -> WorkOrder | None:
        if not 1 <= work_order_id <= MAX_DB_INT:
            return None
        return session.get(WorkOrder, work_order_id)

    def page_context(
        session: Session, context: ApiContext, wo: WorkOrder, now: datetime, who: Viewer
    ) -> dict[str, Any]:
        may_dispatch = who.via_token and who.role in DISPATCH_ROLES
        allowed = workorders.TRANSITIONS.get(wo.state, frozenset())
        # Assigning from open or accepted needs a technician: that is the dispatch form.
        steps = [
            (s, _(STEP_LABELS[s]))
            for s in WORK_ORDER_STATES
            if s in allowed and not (s == "assigned" and not wo.assignee)
        ]
        can_assign = wo.state in ("open", "accepted", "assigned", "in_progress")
        suggestions = (
            technicians_domain.suggest_technicians(
                session, wo, now=now, catalogue=context.catalogue
            )
            if can_assign
            else []
        )
        return {
            "wo": wo,
            "card": work_order_card(wo, now),
            "steps": steps,
            "may_dispatch": may_dispatch,
            "can_assign": can_assign,
            "suggestions": suggestions,
            "parts": parts_domain.parts_of(session, wo, context.catalogue),
            "events": list(wo.events),
            "sla": (
                workorders.response_outcome(wo, now),
                workorders.resolution_outcome(wo, now),
            ),
        }

    @router.get("/work-orders/{work_order_id}", response_class=HTMLResponse)
    def work_order_page(
        request: Request, work_order_id: int, context: ContextDep, now: NowDep, who: ViewerDep
    ) -> HTMLResponse:
        with context.session_factory() as session:
            wo = load(session, work_order_id)
            if wo is None:
                return error_page(
                    request, who, 404, _("Work order not found"),
                    _("There is no work order #%(id)s.") % {"id": work_order_id},
                )
            return render(
                request, "work_order.html", who, **page_context(session, context, wo, now, who)
            )

    def refuse(request: Request, who: Viewer) -> HTMLResponse:
        return error_page(
            request, who, 403, _("Not allowed"),
            _("Dispatching and moving work orders needs a service-desk or admin token."),
        )

    def apply(
        request: Request,
        who: Viewer,
        context: ApiContext,
        work_order_id: int,
        change: Callable[[Session], object],
    ) -> Response:
        with context.session_factory() as session:
            if load(session, work_order_id) is None:
                return error_page(
                    request, who, 404, _("Work order not found"),
                    _("There is no work order #%(id)s.") % {"id": work_order_id},
                )
            try:
                change(session)
            except DomainError as err:
                session.rollback()
                return error_page(
                    request, who, _STATUS.get(err.code, 422), _("Not done"), err.message
                )
            session.commit()
        return RedirectResponse(f"/work-orders/{work_order_id}", status_code=303)

    @router.post("/work-orders/{work_order_id}/assign")
    async def assign(
        request: Request, work_order_id: int, context: ContextDep, now: NowDep, who: ViewerDep
    ) -> Response:
        if not (who.via_token and who.role in DISPATCH_ROLES):
            return refuse(request, who)
        form = await _read_form(request)
        raw = _form_value(form, "technician_id")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_DB_INT:
            return error_page(request, who, 422, _("Not done"), _("Pick a technician."))
        return apply(
            request, who, context, work_order_id,
            lambda session: workorders.assign(
                session, work_order_id, int(raw), actor=who.name, now=now,
                note=_form_value(form, "note")[:2000], catalogue=context.catalogue,
            ),
        )

    @router.post("/work-orders/{work_order_id}/step")
    async def step(
        request: Request, work_order_id: int, context: ContextDep, now: NowDep, who: ViewerDep
    ) -> Response:
        if not (who.via_token and who.role in DISPATCH_ROLES):
            return refuse(request, who)
        form = await _read_form(request)
        to_state = _form_value(form, "to_state")
        if to_state not in WORK_ORDER_STATES:
            return error_page(request, who, 422, _("Not done"), _("Unknown step."))

        def change(session: Session) -> object:
            return workorders.transition(
                session, work_order_id, to_state,
                actor=who.name, now=now, note=_form_value(form, "note")[:2000],
                outcome=_outcome_from(form) if to_state == "done" else None,
                follow_up_at=(
                    _visit_date(_form_value(form, "follow_up_on"))
                    if to_state == "follow_up"
                    else None
                ),
                catalogue=context.catalogue,
            )

        return apply(request, who, context, work_order_id, change)

    return router
