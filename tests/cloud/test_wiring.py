"""The API and the dashboard serve from one context published on the app, and only from it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI

from cloud.api import make_context, mount_api
from cloud.api.deps import publish_context
from cloud.app import create_app
from cloud.dashboard import mount_dashboard
from cloud.db import Base, make_engine, make_session_factory
from cloud.db.engine import SessionFactory
from cloud.settings import CloudSettings
from cloud.telemetry import SqliteTelemetryStore

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

LOCAL = ("127.0.0.1", 50000)  # a browser on the same host: read-only pages without a token


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[CloudSettings, SessionFactory, SqliteTelemetryStore]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'cloud.db'}")
    Base.metadata.create_all(engine)
    store = SqliteTelemetryStore(tmp_path / "telemetry.db")
    try:
        yield CloudSettings(data_dir=tmp_path), make_session_factory(engine), store
    finally:
        store.close()
        engine.dispose()


def test_api_and_dashboard_read_the_same_published_context(
    parts: tuple[CloudSettings, SessionFactory, SqliteTelemetryStore],
) -> None:
    settings, factory, store = parts
    app = FastAPI()
    context = make_context(settings, factory, telemetry_store=store)
    mount_api(app, context)
    mount_dashboard(app, context)
    client = TestClient(app, client=LOCAL)
    assert client.get("/api/v1/health").json()["telemetry"] == "attached"
    assert client.get("/").status_code == 200

    # Publish another context: both front ends see it on their next request.
    frozen = datetime(2031, 5, 6, 7, 8, tzinfo=UTC)
    publish_context(app, make_context(settings, factory, clock=lambda: frozen))
    assert client.get("/api/v1/health").json()["telemetry"] == "absent"
    page = client.get("/")
    assert page.status_code == 503 and "no telemetry store" in page.text
    login = client.get("/login")
    assert login.status_code == 200 and "2031" in login.text


def test_requests_outside_the_service_lifespan_fail_loudly(tmp_path: Path) -> None:
    app = create_app(CloudSettings(data_dir=tmp_path), ingest=False, scoring=False)
    client = TestClient(app, client=LOCAL)  # no `with`: the lifespan never starts
    for path in ("/", "/api/v1/health"):
        with pytest.raises(RuntimeError, match="not running"):
            client.get(path)
    with TestClient(app, client=LOCAL) as running:
        assert running.get("/").status_code == 200
        assert running.get("/api/v1/health").json()["telemetry"] == "attached"
    # Stopped: the database and the store are closed, and requests say so.
    with pytest.raises(RuntimeError, match="not running"):
        client.get("/api/v1/health")
