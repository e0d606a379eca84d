"""Build the REST API: a FastAPI app of its own, or routes mounted on the service's app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Depends, FastAPI

from cloud.api.context import (
    ApiContext,
    FleetCache,
    IngestStatsSource,
    Notifier,
    SnapshotRequester,
)
from cloud.api.deps import publish_context
from cloud.api.errors import install_error_handlers, reject_unknown_query_params
from cloud.api.routes import (
    alerts,
    assets,
    customer_service,
    customers,
    dead_letters,
    export,
    gateways,
    health,
    insight,
    kpis,
    maintenance,
    notifications,
    openapi,
    parts,
    subscriptions,
    technicians,
    telemetry,
    tokens,
    webhooks,
    work_orders,
)
from cloud.api.security import install_security_headers
from cloud.db.engine import SessionFactory
from cloud.domain.catalogue import FailureModeCatalogue, default_catalogue, load_catalogue
from cloud.domain.clock import utc_now
from cloud.domain.policy import ServiceLevelPolicy, load_policy
from cloud.settings import CloudSettings
from cloud.telemetry import TelemetryReader

__all__ = ["API_PREFIX", "api_router", "build_api", "make_context", "mount_api"]

API_PREFIX = "/api/v1"
DESCRIPTION = """\
Ironwatch cloud API: assets, gateways, alerts, preventive-maintenance work orders,
escalations, KPIs, webhook delivery log and telemetry.

Authenticate with `Authorization: Bearer <token>`. Roles: `gateway`, `engineer`,
`service_desk`, `admin`. Every error is `{"error": {"code", "message", "details"}}`.
"""


def api_router() -> APIRouter:
    """All resource routers under /api/v1."""
    router = APIRouter(prefix=API_PREFIX, dependencies=[Depends(reject_unknown_query_params)])
    for module in (
        health,
        assets,
        customers,
        customer_service,
        gateways,
        alerts,
        work_orders,
        technicians,
        parts,
        kpis,
        maintenance,
        insight,
        webhooks,
        subscriptions,
        notifications,
        telemetry,
        tokens,
        dead_letters,
        export,
        openapi,
    ):
        router.include_router(module.router)
    return router


def make_context(
    settings: CloudSettings,
    session_factory: SessionFactory,
    *,
    telemetry_store: TelemetryReader | None = None,
    policy: ServiceLevelPolicy | None = None,
    catalogue: FailureModeCatalogue | None = None,
    notifier: Notifier | None = None,
    registry: FleetCache | None = None,
    clock: Callable[[], datetime] = utc_now,
    request_snapshot: SnapshotRequester | None = None,
    ingest_stats: IngestStatsSource | None = None,
) -> ApiContext:
    """The ApiContext; policy and catalogue default to the files named in the settings."""
    if catalogue is None:
        catalogue = (
            load_catalogue(settings.failure_mode_catalogue_file)
            if settings.failure_mode_catalogue_file is not None
            else default_catalogue()
        )
    return ApiContext(
        settings=settings,
        session_factory=session_factory,
        telemetry=telemetry_store,
        policy=policy or load_policy(settings.sla_policy_file),
        catalogue=catalogue,
        notifier=notifier,
        registry=registry,
        clock=clock,
        request_snapshot=request_snapshot,
        ingest_stats=ingest_stats,
    )


def mount_api(app: FastAPI, context: ApiContext) -> None:
    """Add the API routes, the error model and the security headers to an existing app."""
    publish_context(app, context)
    install_error_handlers(app)
    install_security_headers(app)
    app.include_router(api_router())


def build_api(
    settings: CloudSettings,
    session_factory: SessionFactory,
    *,
    telemetry_store: TelemetryReader | None = None,
    policy: ServiceLevelPolicy | None = None,
    catalogue: FailureModeCatalogue | None = None,
    notifier: Notifier | None = None,
    registry: FleetCache | None = None,
) -> FastAPI:
    """A FastAPI app serving the API; the database must already be migrated (cloud.db.upgrade)."""
    app = FastAPI(
        title="Ironwatch cloud API",
        version="1.0.0",
        description=DESCRIPTION,
        # Served by cloud.api.routes.openapi behind a token; no docs page that loads its
        # scripts from a CDN (the content security policy allows no scripts at all).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    mount_api(
        app,
        make_context(
            settings,
            session_factory,
            telemetry_store=telemetry_store,
            policy=policy,
            catalogue=catalogue,
            notifier=notifier,
            registry=registry,
        ),
    )
    return app
