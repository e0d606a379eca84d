"""The customer portal under /portal: a customer's machines, their health, the progress of
its work orders, reporting a fault and rating finished work.

Only a session started with a customer token opens it, and everything is read through
that customer's `Scope`: another customer's machine or work order is "not found" here,
exactly like one that does not exist. Staff sessions use the main dashboard instead.
No `from __future__ import annotations`: FastAPI resolves the handlers' annotations.
"""

import logging
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from cloud.api.deps import ContextDep, NowDep
from cloud.api.schemas.common import MAX_DB_INT
from cloud.dashboard import zones
from cloud.dashboard._portal_views import portal_asset, portal_home, work_order_progress
from cloud.dashboard.auth import PORTAL_ROLES, Viewer
from cloud.dashboard.i18n import gettext as _
from cloud.dashboard.sessions import SESSION_COOKIE, SessionStore
from cloud.db.models import Asset, Customer
from cloud.domain import workorders
from cloud.domain.errors import ConflictError, DomainError, NotFoundError
from cloud.domain.scope import Scope

__all__ = ["portal_router"]

log = logging.getLogger(__name__)

MAX_DESCRIPTION = 2000
MAX_FEEDBACK = 2000


def _form(body: bytes) -> dict[str, str]:
    """A urlencoded form's fields, first value of each (the CSRF middleware checked it)."""
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def portal_router(templates: Jinja2Templates) -> APIRouter:
    """The portal's pages and forms, rendered with the dashboard's templates."""
    router = APIRouter(include_in_schema=False)

    def who(request: Request, context: ContextDep) -> Viewer | Response:
        """The signed-in customer, or the answer for anybody else."""
        secret = request.cookies.get(SESSION_COOKIE, "")
        signed = SessionStore(context.session_factory, context.clock).resolve(secret)
        if signed is None:
            target = quote(request.url.path)
            return RedirectResponse(f"/login?next={target}", status_code=303)
        if signed.role not in PORTAL_ROLES:
            return _page(
                request, None, None, "portal_error.html", status=403,
                title=_("The portal is for customers"),
                message=_("Sign in with a customer's token to see the portal."),
            )
        return Viewer(
            name=signed.name, role=signed.role, via_token=True, customer_id=signed.customer_id
        )

    def _page(
        request: Request,
        viewer: Viewer | None,
        customer: Customer | None,
        name: str,
        *,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        now = request.app.state.ironwatch_api.clock()
        context.update(viewer=viewer, customer=customer, now=now, nav=name.removesuffix(".html"))
        return templates.TemplateResponse(request, name, context, status_code=status)

    def not_found(
        request: Request, viewer: Viewer, customer: Customer | None, what: str
    ) -> HTMLResponse:
        return _page(
            request, viewer, customer, "portal_error.html", status=404,
            title=_("Not found"), message=what,
        )

    def home(
        request: Request,
        context: ContextDep,
        now: datetime,
        viewer: Viewer,
        *,
        status: int = 200,
        error: str | None = None,
        form: dict[str, str] | None = None,
    ) -> HTMLResponse:
        scope = Scope.of_customer(viewer.customer_id)
        with context.session_factory() as session:
            customer = session.get(Customer, viewer.customer_id or "")
            view = portal_home(session, scope, context.telemetry, now)
            _use_plant_zone([h.asset for h in view.machines])
            return _page(
                request, viewer, customer, "portal.html", status=status,
                home=view, error=error, form=form or {},
                notice=_notice(request.query_params.get("done")),
            )

    @router.get("/portal", response_class=HTMLResponse)
    def portal(request: Request, context: ContextDep, now: NowDep) -> Response:
        viewer = who(request, context)
        if isinstance(viewer, Response):
            return viewer
        return home(request, context, now, viewer)

    @router.get("/portal/assets/{asset_id}", response_class=HTMLResponse)
    def machine(request: Request, asset_id: str, context: ContextDep, now: NowDep) -> Response:
        viewer = who(request, context)
        if isinstance(viewer, Response):
            return viewer
        scope = Scope.of_customer(viewer.customer_id)
        with context.session_factory() as session:
            customer = session.get(Customer, viewer.customer_id or "")
            found = portal_asset(session, scope, context.telemetry, asset_id, now)
            if found is None:
                return not_found(
                    request, viewer, customer, _("There is no machine %(id)s.") % {"id": asset_id}
                )
            health, orders = found
            _use_plant_zone([health.asset])
            return _page(
                request, viewer, customer, "portal_asset.html",
                health=health, orders=orders, site=health.asset.site, error=None, form={},
            )

    @router.get("/portal/work-orders/{work_order_id}", response_class=HTMLResponse)
    def work_order(
        request: Request, work_order_id: int, context: ContextDep, now: NowDep
    ) -> Response:
        viewer = who(request, context)
        if isinstance(viewer, Response):
            return viewer
        scope = Scope.of_customer(viewer.customer_id)
        with context.session_factory() as session:
            customer = session.get(Customer, viewer.customer_id or "")
            try:
                if not 1 <= work_order_id <= MAX_DB_INT:
                    raise NotFoundError("out of range")
                wo = scope.work_order(session, work_order_id)
            except NotFoundError:
                return not_found(
                    request, viewer, customer,
                    _("There is no work order %(id)s.") % {"id": work_order_id},
                )
            _use_plant_zone([wo.asset])
            return _page(
                request, viewer, customer, "portal_work_order.html",
                w=work_order_progress(wo), description=wo.description,
                notice=_notice(request.query_params.get("done")), error=None,
            )

    @router.post("/portal/fault-reports", response_model=None)
    async def report_fault(request: Request, context: ContextDep, now: NowDep) -> Response:
        viewer = who(request, context)
        if isinstance(viewer, Response):
            return viewer
        form = _form(await request.body())
        asset_id = form.get("asset_id", "").strip()
        description = form.get("description", "").strip()
        scope = Scope.of_customer(viewer.customer_id)
        error: str | None = None
        with context.session_factory() as session:
            asset = session.get(Asset, asset_id) if asset_id else None
            if asset is None or not scope.sees(asset):
                error = _("Choose one of your machines.")
            elif not description:
                error = _("Describe the fault: what do you see, hear or smell?")
            elif len(description) > MAX_DESCRIPTION:
                error = _("Keep the description under %(n)s characters.") % {"n": MAX_DESCRIPTION}
            else:
                try:
                    wo = workorders.report_fault(
                        session, asset=asset, description=description, actor=viewer.name,
                        now=now, policy=context.policy,
                    )
                    session.commit()
                except ConflictError as err:
                    session.rollback()
                    open_id = err.details.get("work_order_id")
                    error = _(
                        "A fault on this machine is already reported: work order %(id)s."
                    ) % {"id": open_id}
                except DomainError as err:
                    session.rollback()
                    error = err.message
                else:
                    context.webhooks_queued()
                    log.info("fault reported by %s on %s: WO %s", viewer.name, asset_id, wo.id)
                    return RedirectResponse(
                        f"/portal/work-orders/{wo.id}?done=reported", status_code=303
                    )
        return home(request, context, now, viewer, status=422, error=error, form=form)

    @router.post("/portal/work-orders/{work_order_id}/rating", response_model=None)
    async def rate(
        request: Request, work_order_id: int, context: ContextDep, now: NowDep
    ) -> Response:
        viewer = who(request, context)
        if isinstance(viewer, Response):
            return viewer
        form = _form(await request.body())
        scope = Scope.of_customer(viewer.customer_id)
        with context.session_factory() as session:
            customer = session.get(Customer, viewer.customer_id or "")
            try:
                if not 1 <= work_order_id <= MAX_DB_INT:
                    raise NotFoundError("out of range")
                wo = scope.work_order(session, work_order_id)
            except NotFoundError:
                return not_found(
                    request, viewer, customer,
                    _("There is no work order %(id)s.") % {"id": work_order_id},
                )
            raw = form.get("satisfaction", "")
            feedback = form.get("feedback", "").strip()[:MAX_FEEDBACK] or None
            error: str | None = None
            if raw not in {"1", "2", "3", "4", "5"}:
                error = _("Choose a rating from 1 to 5 stars.")
            else:
                try:
                    workorders.rate_work_order(
                        session, wo.id, satisfaction=int(raw), feedback=feedback,
                        actor=viewer.name, now=now,
                    )
                    session.commit()
                except DomainError as err:
                    session.rollback()
                    error = err.message
                else:
                    context.webhooks_queued()
                    return RedirectResponse(
                        f"/portal/work-orders/{wo.id}?done=rated", status_code=303
                    )
            session.refresh(wo)
            _use_plant_zone([wo.asset])
            return _page(
                request, viewer, customer, "portal_work_order.html", status=422,
                w=work_order_progress(wo), description=wo.description, notice=None, error=error,
            )

    return router


def _use_plant_zone(assets: list[Any]) -> None:
    """Show the page in the plants' zone when its machines share one (a customer with one
    site, or one machine); else the viewer's zone stays, and every time names its zone."""
    plant = {zones.asset_zone(a) for a in assets}
    if len(plant) == 1:
        zone = plant.pop()
        if zone is not None:
            zones.use_zone(zone)


def _notice(done: str | None) -> str | None:
    if done == "reported":
        return _("Thank you. Your report is a work order now; the service desk will respond.")
    if done == "rated":
        return _("Thank you for rating the service.")
    return None
