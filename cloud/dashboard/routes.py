"""The dashboard's HTTP routes: thin handlers that load a view, render a template.

All routes are left out of the OpenAPI schema: they are pages for people, not API.
Services come from the same `ApiContext` the REST API reads (`cloud.api.deps`).
No `from __future__ import annotations` here: FastAPI must resolve the `Annotated`
dependencies, which are local to `build_router`, when the handlers are defined.
"""

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.context import SnapshotRequester
from cloud.api.deps import ContextDep, NowDep, get_context
from cloud.dashboard import _format, apidocs, i18n, zones
from cloud.dashboard._asset_charts import spectrum_view, trend_panels, velocity_sparkline
from cloud.dashboard._ingestion import ingestion_view
from cloud.dashboard._kit import PageKit
from cloud.dashboard._labels import term
from cloud.dashboard._pages_alerts import build_router as alert_pages
from cloud.dashboard._pages_insight import build_router as insight_pages
from cloud.dashboard._pages_maintenance import build_router as maintenance_pages
from cloud.dashboard._pages_portal import portal_router
from cloud.dashboard._pages_search import build_router as search_pages
from cloud.dashboard._pages_work_order_detail import build_router as work_order_detail_pages
from cloud.dashboard._pages_work_orders import build_router as work_order_pages
from cloud.dashboard._views import alert_row, asset_health, fleet_health
from cloud.dashboard.auth import (
    LOCAL_VIEWER,
    PORTAL_ROLES,
    Viewer,
    is_loopback,
    local_read_only_enabled,
    principal_for_token,
)
from cloud.dashboard.charts import TimeMarker, rul_chart, score_gauge
from cloud.dashboard.csrf import csrf_field, require_csrf_checked
from cloud.dashboard.i18n import gettext as _
from cloud.dashboard.preferences import localize
from cloud.dashboard.preferences import router as preferences_router
from cloud.dashboard.sessions import SESSION_COOKIE, SESSION_LIFETIME, SessionStore
from cloud.db.models import OPEN_ALERT_STATES, Alert, Asset
from cloud.telemetry import TelemetryError, TelemetryReader
from ironwatch.physics import iso_class

__all__ = ["build_router"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
STATIC_PREFIX = "/_dashboard"
TREND_WINDOWS_H = (1, 6, 24, 168, 720)
REFRESH_S = 5


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    env = templates.env
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True
    )
    env.globals.update(
        fmt_num=_format.fmt_num,
        fmt_zone=_format.fmt_zone,
        term=term,
        asset_zone=zones.asset_zone,
        html_lang=i18n.html_lang,
        locales=i18n.LOCALES,
        current_locale=i18n.current_locale,
        fmt_time=_format.fmt_time,
        fmt_ago=_format.fmt_ago,
        fmt_hours=_format.fmt_hours,
        fmt_hours_range=_format.fmt_hours_range,
        fmt_duration=_format.fmt_duration,
        rul_chart=rul_chart,
        score_gauge=score_gauge,
        velocity_sparkline=velocity_sparkline,
        iso_class=iso_class,
        static=STATIC_PREFIX,
        csrf_field=csrf_field,
    )
    return templates


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login would be a phishing aid.
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def build_router() -> APIRouter:
    """All dashboard pages and the stylesheet on one router, to be mounted at `/`.

    The asset page says when scoring fails for the asset (the context's `scoring`, where
    scoring runs in this process).
    """
    templates = _templates()
    # Every write on this router must have passed the CSRF middleware (cloud.dashboard.csrf).
    # Each request speaks its viewer's language and shows times in their zone (`localize`).
    router = APIRouter(
        include_in_schema=False,
        dependencies=[Depends(require_csrf_checked), Depends(localize)],
    )

    def session_dep(context: ContextDep) -> Iterator[Session]:
        # Pages only read: the session is closed (rolled back), never committed.
        with context.session_factory() as session:
            yield session

    SessionDep = Annotated[Session, Depends(session_dep)]

    def store_dep(context: ContextDep) -> TelemetryReader:
        if context.telemetry is None:
            raise HTTPException(503, "no telemetry store is attached")
        return context.telemetry

    StoreDep = Annotated[TelemetryReader, Depends(store_dep)]

    def snapshot_dep(context: ContextDep) -> SnapshotRequester | None:
        return context.request_snapshot

    RequesterDep = Annotated[SnapshotRequester | None, Depends(snapshot_dep)]

    def sessions_dep(context: ContextDep) -> SessionStore:
        return SessionStore(context.session_factory, context.clock)

    SessionsDep = Annotated[SessionStore, Depends(sessions_dep)]

    def viewer(request: Request, context: ContextDep, sessions: SessionsDep) -> Viewer:
        settings = context.settings
        secret = request.cookies.get(SESSION_COOKIE)
        if secret:
            signed_in = sessions.resolve(secret)
            if signed_in is not None and signed_in.role in PORTAL_ROLES:
                # A customer sees the portal only: the staff pages do not exist for it
                # (404 whatever the id, so nothing tells it which machines exist).
                if request.url.path == "/":
                    raise HTTPException(303, "the portal", headers={"Location": "/portal"})
                raise HTTPException(404, "page not found")
            if signed_in is not None:
                return Viewer(name=signed_in.name, role=signed_in.role, via_token=True)
        local_ok = local_read_only_enabled(settings)
        if local_ok and is_loopback(request.client.host if request.client else None):
            return LOCAL_VIEWER
        target = quote(request.url.path)
        raise HTTPException(303, "login required", headers={"Location": f"/login?next={target}"})

    ViewerDep = Annotated[Viewer, Depends(viewer)]

    def render(request: Request, name: str, who: Viewer, **context: Any) -> HTMLResponse:
        now = get_context(request).clock()
        context.update(viewer=who, now=now, nav=name.removesuffix(".html"))
        return templates.TemplateResponse(request, name, context)

    router.include_router(preferences_router(render, viewer))
    router.include_router(apidocs.router(render, viewer, STATIC_PREFIX))

    def error_page(
        request: Request, who: Viewer | None, status: int, title: str, message: str
    ) -> HTMLResponse:
        # A person followed a link: answer with a page, not the API's JSON error body.
        return templates.TemplateResponse(
            request,
            "error.html",
            {
                "viewer": who,
                "now": get_context(request).clock(),
                "nav": "error",
                "title": title,
                "message": message,
            },
            status_code=status,
        )

    # The pages of the engineer's workbench, each module with its own router.
    kit = PageKit(templates, viewer, session_dep, render, error_page)
    router.include_router(alert_pages(kit))
    router.include_router(maintenance_pages(kit))
    router.include_router(work_order_pages(kit))
    router.include_router(search_pages(kit))
    router.include_router(work_order_detail_pages(kit))
    router.include_router(insight_pages(kit))

    @router.get(f"{STATIC_PREFIX}/dashboard.css")
    def stylesheet() -> FileResponse:
        return FileResponse(
            _HERE / "static" / "dashboard.css",
            media_type="text/css",
            headers={"Cache-Control": "max-age=300"},
        )

    @router.get(f"{STATIC_PREFIX}/tz.js")
    def zone_script() -> FileResponse:
        return FileResponse(
            _HERE / "static" / "tz.js",
            media_type="text/javascript",
            headers={"Cache-Control": "max-age=300"},
        )

    @router.get("/", response_class=HTMLResponse)
    def fleet(
        request: Request, session: SessionDep, store: StoreDep, now: NowDep, who: ViewerDep
    ) -> HTMLResponse:
        health = fleet_health(session, store, now)
        orders = sorted(
            (wo for h in health for wo in h.work_orders),
            key=lambda w: (not w.overdue, w.priority, w.resolve_by.at),
        )
        return render(request, "fleet.html", who, fleet=health, orders=orders, refresh_s=REFRESH_S)

    @router.get("/assets/{asset_id}", response_class=HTMLResponse)
    def asset_page(
        request: Request,
        asset_id: str,
        *,
        session: SessionDep,
        store: StoreDep,
        now: NowDep,
        request_snapshot: RequesterDep,
        who: ViewerDep,
        hours: int = 24,
        snapshot: str | None = None,
    ) -> HTMLResponse:
        health = asset_health(session, store, asset_id, now)
        if health is None:
            return error_page(
                request,
                who,
                404,
                _("Asset not found"),
                _("There is no asset %(id)s.") % {"id": repr(asset_id)},
            )
        # The plant's times in the plant's zone, when its site names one.
        plant_zone = zones.asset_zone(health.asset)
        if plant_zone is not None:
            zones.use_zone(plant_zone)
        hours = min(max(hours, 1), 24 * 90)
        start = now - timedelta(hours=hours)
        recent = session.scalars(
            select(Alert)
            .where(Alert.asset_id == asset_id, Alert.opened_at >= start)
            .order_by(Alert.opened_at)
        ).all()
        onsets = [
            TimeMarker(
                a.opened_at.timestamp(), f"#{a.id} {term(a.failure_mode)}", f"onset {a.severity}"
            )
            for a in recent
        ]
        panels = trend_panels(store, health.asset, start, now + timedelta(minutes=1), onsets)
        try:
            snap = store.latest_snapshot(asset_id)
        except TelemetryError as err:
            log.warning("latest snapshot of %s unavailable: %s", asset_id, err)
            snap = None
        spectra = spectrum_view(snap, health.asset) if snap is not None else None
        monitor = get_context(request).scoring
        return render(
            request,
            "asset.html",
            who,
            health=health,
            panels=panels,
            spectra=spectra,
            hours=hours,
            windows=TREND_WINDOWS_H,
            can_request=request_snapshot is not None,
            past_alerts=[
                alert_row(a) for a in reversed(recent) if a.state not in OPEN_ALERT_STATES
            ],
            snapshot_status=snapshot,
            scoring=monitor.asset(asset_id) if monitor is not None else None,
        )

    @router.post("/assets/{asset_id}/snapshot")
    def snapshot_request(
        request: Request,
        asset_id: str,
        session: SessionDep,
        request_snapshot: RequesterDep,
        who: ViewerDep,
    ) -> Response:
        if not who.can_write:
            return error_page(
                request,
                who,
                403,
                _("Not allowed"),
                _("Requesting a snapshot needs an engineer or admin token."),
            )
        if request_snapshot is None:
            return error_page(
                request,
                who,
                503,
                _("No command channel"),
                _("This service has no command channel to the gateways."),
            )
        if session.get(Asset, asset_id) is None:
            return error_page(
                request,
                who,
                404,
                _("Asset not found"),
                _("There is no asset %(id)s.") % {"id": repr(asset_id)},
            )
        try:
            command_id = request_snapshot(asset_id, None, who.name)
        except Exception as err:  # the broker link is down, the asset has no gateway, ...
            log.warning("snapshot request for %s failed: %s", asset_id, err)
            return error_page(
                request,
                who,
                503,
                _("Snapshot not requested"),
                _("The command could not be sent: %(error)s") % {"error": err},
            )
        log.info("snapshot of %s requested by %s: %s", asset_id, who.name, command_id)
        return RedirectResponse(
            f"/assets/{quote(asset_id)}?snapshot={quote(command_id)}", status_code=303
        )

    @router.get("/ingestion", response_class=HTMLResponse)
    def ingestion(
        request: Request, session: SessionDep, who: ViewerDep,
        gateway: str | None = None, reason: str | None = None,
    ) -> HTMLResponse:
        view = ingestion_view(session, gateway_id=gateway or None, reason_code=reason or None)
        return render(request, "ingestion.html", who, view=view, refresh_s=REFRESH_S * 6)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, now: NowDep, next: str = "/") -> HTMLResponse:
        context = {
            "next": _safe_next(next),
            "error": None,
            "viewer": None,
            "nav": "login",
            "now": now,
        }
        return templates.TemplateResponse(request, "login.html", context)

    @router.post("/login", response_model=None)
    async def login(
        request: Request, context: ContextDep, now: NowDep, sessions: SessionsDep
    ) -> Response:
        # A three-field form does not justify a multipart dependency: parse it here.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        target = _safe_next((form.get("next") or ["/"])[0])
        secret: str | None = None
        # A sign-in ends the session this browser had, if any: one browser, one session.
        sessions.end(request.cookies.get(SESSION_COOKIE, ""))
        with context.session_factory() as session:
            principal = principal_for_token(session, context.settings, token, now)
            if principal is not None:
                # A session of its own: the cookie never holds the API token.
                secret = sessions.start(
                    session,
                    name=principal.name,
                    role=principal.role,
                    token_id=principal.token_id,
                    customer_id=principal.customer_id,
                )
                if principal.role in PORTAL_ROLES and not target.startswith("/portal"):
                    target = "/portal"
            session.commit()
        if secret is None:
            return templates.TemplateResponse(
                request,
                "login.html",
                {
                    "next": target,
                    "error": _("Unknown, expired or revoked token, or a gateway token."),
                    "viewer": None,
                    "nav": "login",
                    "now": now,
                },
                status_code=401,
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            secret,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/",
        )
        return response

    @router.post("/logout")
    def logout(request: Request, sessions: SessionsDep) -> Response:
        # Ended on the server: a copy of the cookie is worthless from now on.
        sessions.end(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    router.include_router(portal_router(templates))
    return router
