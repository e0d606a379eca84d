"""The reliability engineers' web dashboard: fleet, asset, work-order and alert pages.

Server-rendered HTML with inline SVG charts; nothing is fetched from the internet, and
the pages work without JavaScript. `build_dashboard` returns one router (pages and the
stylesheet) that the app includes at `/`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter

from cloud.dashboard.routes import SnapshotRequester, build_router
from cloud.db.engine import SessionFactory
from cloud.settings import CloudSettings
from cloud.telemetry import TelemetryStore

__all__ = ["SnapshotRequester", "build_dashboard"]


def build_dashboard(
    session_factory: SessionFactory,
    store: TelemetryStore,
    settings: CloudSettings,
    *,
    request_snapshot: SnapshotRequester | None = None,
    clock: Callable[[], datetime] | None = None,
) -> APIRouter:
    """The dashboard router; include it with `app.include_router(router)` (no prefix).

    `request_snapshot(asset_id, point, actor) -> command_id` sends a snapshot command to
    the asset's gateway; without it the asset page explains how to get a snapshot instead.
    """
    return build_router(
        session_factory, store, settings, request_snapshot=request_snapshot, clock=clock
    )
