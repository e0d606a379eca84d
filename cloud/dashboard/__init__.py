"""The reliability engineers' web dashboard: fleet, asset, work-order and alert pages.

Server-rendered HTML with inline SVG charts; nothing is fetched from the internet, and
the pages work without JavaScript. The pages read the same `ApiContext` as the REST API:
`mount_dashboard(app, context)` publishes it and adds the pages with their protections
(CSRF check, security headers); the cloud service adds `dashboard_router()` and
`install_csrf_protection(app)` at start-up and publishes its context when its lifespan
begins.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from cloud.api.context import ApiContext, SnapshotRequester
from cloud.api.deps import publish_context
from cloud.dashboard._pages_reports import render_report_files
from cloud.dashboard._reports import file_monthly_reports
from cloud.dashboard.csrf import install_csrf_protection
from cloud.dashboard.routes import _templates
from cloud.dashboard.routes import build_router as dashboard_router
from cloud.db.engine import SessionFactory
from cloud.telemetry import TelemetryReader

__all__ = [
    "SnapshotRequester",
    "dashboard_router",
    "file_reports",
    "install_csrf_protection",
    "mount_dashboard",
]


def mount_dashboard(app: FastAPI, context: ApiContext) -> None:
    """Serve the dashboard pages (at `/`) on `app` from `context`, with CSRF protection of
    their forms and the security headers."""
    publish_context(app, context)
    app.include_router(dashboard_router())
    install_csrf_protection(app)


@cache
def _report_templates() -> Jinja2Templates:
    return _templates()


def file_reports(
    session_factory: SessionFactory, store: TelemetryReader | None, now: datetime
) -> int:
    """File last month's operating reports that are due (the cloud's housekeeping calls this
    every few minutes; a month already filed is left alone). Returns how many were filed."""
    return file_monthly_reports(
        session_factory, store, lambda r: render_report_files(_report_templates(), r), now=now
    )
