"""The reliability engineers' web dashboard: fleet, asset, work-order and alert pages.

Server-rendered HTML with inline SVG charts; nothing is fetched from the internet, and
the pages work without JavaScript. The pages read the same `ApiContext` as the REST API:
`mount_dashboard(app, context)` publishes it and adds the pages with their protections
(CSRF check, security headers); the cloud service adds `dashboard_router()` and
`install_csrf_protection(app)` at start-up and publishes its context when its lifespan
begins.
"""

from __future__ import annotations

from fastapi import FastAPI

from cloud.api.context import ApiContext, SnapshotRequester
from cloud.api.deps import publish_context
from cloud.dashboard.csrf import install_csrf_protection
from cloud.dashboard.routes import build_router as dashboard_router

__all__ = ["SnapshotRequester", "dashboard_router", "install_csrf_protection", "mount_dashboard"]


def mount_dashboard(app: FastAPI, context: ApiContext) -> None:
    """Serve the dashboard pages (at `/`) on `app` from `context`, with CSRF protection of
    their forms and the security headers."""
    publish_context(app, context)
    app.include_router(dashboard_router())
    install_csrf_protection(app)
