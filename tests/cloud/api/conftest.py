"""API fixtures: the app on an in-memory database, a token per role, a fixed clock."""

from __future__ import annotations

import functools
import sqlite3
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cloud.api import build_api
from cloud.db import (
    Base,
    SessionFactory,
    WebhookSubscription,
    make_engine,
    make_session_factory,
)
from cloud.domain import open_from_alert, seed_fleet, upsert_alert
from cloud.domain.tokens import create_token
from cloud.settings import load_settings

with warnings.catch_warnings():
    # Starlette 1.x deprecates httpx for its test client in favour of httpx2, which the pinned
    # dev dependencies do not include yet; drop this once they do.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

ADMIN_TOKEN = "bootstrap-Adm1n-t0ken-4f9c2e"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FLEET = {
    "gateways": [{"id": "gw-1"}, {"id": "gw-2"}],
    "assets": [
        {"id": "pump-1", "gateway_id": "gw-1", "kind": "pump", "customer_tier": "strategic"},
        {"id": "fan-1", "gateway_id": "gw-1", "kind": "fan"},
        {"id": "motor-2", "gateway_id": "gw-2", "customer_tier": "key"},
    ],
}


@dataclass
class Api:
    """The client, the database behind it, and a bearer header per role."""

    client: TestClient
    session_factory: SessionFactory
    headers: dict[str, dict[str, str]]
    clock: list[datetime]

    def as_(self, role: str) -> dict[str, str]:
        return self.headers[role]

    def request(self, role: str | None, method: str, url: str, **kwargs: Any) -> Any:
        headers = self.headers[role] if role else {}
        return self.client.request(method, url, headers=headers, **kwargs)


def seed(session: Session) -> None:
    """The fleet, the service desk's webhook subscription, one alert with its work order."""
    seed_fleet(session, FLEET)
    since = NOW - timedelta(days=1)
    session.add(
        WebhookSubscription(
            name="service desk", url="http://127.0.0.1:9/hooks", events=["work_order.*"],
            secret="desk-shared-secret-0123456789", created_at=since, updated_at=since,
        )
    )
    alert = upsert_alert(
        session,
        asset_id="pump-1",
        failure_mode="bearing_outer_race",
        severity="alarm",
        score=6.0,
        evidence={"bpfo_amplitude_ms2": 2.5},
        model="envelope",
        model_version="2.0",
        rul_hours=(150.0, 300.0, 600.0),
        now=NOW,
        confidence=0.9,
    )
    open_from_alert(session, alert, now=NOW)


@functools.cache
def _shared_app() -> FastAPI:
    # Building the app costs ~1 s (FastAPI analyses every route); build it once and give
    # each test a fresh database by swapping the session factory in its context.
    engine = make_engine("sqlite://")
    return build_api(load_settings(admin_token=ADMIN_TOKEN), make_session_factory(engine))


@functools.cache
def _template() -> tuple[Engine, dict[str, dict[str, str]]]:
    """The seeded database, built once; each test gets a copy (SQLite's backup API, ~1 ms)."""
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    headers = {"admin": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}
    with factory() as session:
        seed(session)
        for role in ("engineer", "service_desk", "gateway"):
            _, text = create_token(
                session,
                name=role,
                role=role,
                actor="test",
                now=NOW,
                gateway_id="gw-1" if role == "gateway" else None,
            )
            headers[role] = {"Authorization": f"Bearer {text}"}
        # A customer owning none of the fleet: its token sees an empty fleet.
        seed_fleet(session, {"customers": [{"id": "acme", "name": "ACME", "tier": "key"}]})
        _, text = create_token(
            session, name="customer", role="customer", actor="test", now=NOW, customer_id="acme"
        )
        headers["customer"] = {"Authorization": f"Bearer {text}"}
        session.commit()
    return engine, headers


def _sqlite(engine: Engine) -> sqlite3.Connection:
    connection = engine.raw_connection().driver_connection
    assert isinstance(connection, sqlite3.Connection)
    return connection


def build(telemetry_store: Any = None) -> Api:
    template, headers = _template()
    engine = make_engine("sqlite://")
    _sqlite(template).backup(_sqlite(engine))
    factory = make_session_factory(engine)
    clock = [NOW]
    app = _shared_app()
    context = app.state.ironwatch_api
    context.session_factory = factory
    context.telemetry = telemetry_store
    context.clock = lambda: clock[0]
    context.scoring = None
    return Api(client=_shared_client(), session_factory=factory, headers=headers, clock=clock)


@functools.cache
def _shared_client() -> TestClient:
    return TestClient(_shared_app(), raise_server_exceptions=False)


@pytest.fixture
def api() -> Iterator[Api]:
    built = build()
    yield built
    built.session_factory.kw["bind"].dispose()
