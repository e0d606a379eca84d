"""The schema on SQLite and a real PostgreSQL: migrations, model parity, invariants, a full flow."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.db import (
    Alert,
    Asset,
    Base,
    Verdict,
    WebhookDelivery,
    WorkOrder,
    make_engine,
    make_session_factory,
    upgrade,
)
from cloud.domain import (
    open_from_alert,
    seed_fleet,
    transition,
    upsert_alert,
)
from cloud.domain.escalation import check_escalations
from cloud.domain.kpis import compute_kpis

from .conftest import FLEET, T0, subscribe_desk

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'ironwatch.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    eng = make_engine(url)
    yield eng
    eng.dispose()


def test_upgrade_on_empty_database_creates_every_table(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)  # idempotent: the app runs it at every start
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_models_match_migrations(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_upgrade_accepts_a_url(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'sub' / 'x.db'}"
    upgrade(url)
    eng = make_engine(url)
    assert "work_orders" in inspect(eng).get_table_names()
    eng.dispose()


def test_database_refuses_a_second_open_alert_per_mode(engine: Engine) -> None:
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_fleet(session, FLEET)
        session.commit()
        row = {
            "asset_id": "pump-1",
            "failure_mode": "imbalance",
            "severity": "warning",
            "state": "open",
            "score": 1.0,
            "evidence": {},
            "model": "m",
            "model_version": "1",
            "opened_at": T0,
            "last_seen_at": T0,
        }
        session.add(Alert(**row))
        session.commit()
        # A resolved twin is fine: the invariant is about open alerts only.
        session.add(Alert(**{**row, "state": "resolved"}))
        session.commit()
        session.add(Alert(**row))
        with pytest.raises(IntegrityError):
            session.commit()


def test_full_flow_round_trips_utc_times(engine: Engine) -> None:
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_fleet(session, FLEET)
        subscribe_desk(session)
        alert = upsert_alert(
            session,
            asset_id="pump-1",
            failure_mode="bearing_outer_race",
            severity="alarm",
            score=7.5,
            evidence={"bpfo_amplitude_ms2": 3.1},
            model="envelope",
            model_version="2.1",
            rul_hours=(120.0, 300.0, 600.0),
            now=T0,
            confidence=0.9,
            iso_zone="C",
        )
        wo = open_from_alert(session, alert, now=T0)
        assert wo is not None
        session.commit()
        wo_id = wo.id
    with factory() as session:
        wo = session.get(WorkOrder, wo_id)
        assert wo is not None
        assert wo.created_at == T0
        assert wo.created_at.tzinfo is not None
        assert wo.respond_by == T0 + timedelta(hours=1)  # strategic tier
        transition(session, wo_id, "assigned", actor="desk", now=T0, assignee="ana")
        transition(session, wo_id, "in_progress", actor="ana", now=T0 + timedelta(hours=2))
        transition(session, wo_id, "done", actor="ana", now=T0 + timedelta(hours=20))
        transition(
            session,
            wo_id,
            "closed",
            actor="desk",
            now=T0 + timedelta(hours=21),
            failure_confirmed_at=T0 + timedelta(hours=200),
        )
        assert check_escalations(session, T0 + timedelta(days=30)) == []
        session.commit()
    with factory() as session:
        kpis = compute_kpis(session, start=T0 - timedelta(days=1), end=T0 + timedelta(days=30))
        assert kpis.confirmed_failures == 1
        assert kpis.mean_lead_time_h == pytest.approx(200.0)
        assert kpis.sla_response_compliance == 1.0
        assert kpis.sla_resolution_compliance == 1.0
        assert session.scalar(select(Verdict.verdict)) == "confirmed"
        assert session.scalars(select(WebhookDelivery)).all()
        assert session.get(Asset, "pump-1") is not None


def _upsert(session: Session) -> None:
    upsert_alert(
        session,
        asset_id="fan-1",
        failure_mode="imbalance",
        severity="warning",
        score=2.0,
        evidence={},
        model="m",
        model_version="1",
        rul_hours=None,
        now=T0,
    )


def test_two_scorers_racing_cannot_open_twin_alerts(engine: Engine) -> None:
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_fleet(session, FLEET)
        session.commit()
    outcome: list[BaseException | None] = []

    def second_scorer() -> None:
        with factory() as other:
            try:
                _upsert(other)  # blocks on the first scorer's uncommitted row, then fails
                other.commit()
                outcome.append(None)
            except IntegrityError as err:
                outcome.append(err)

    with factory() as first:
        _upsert(first)
        thread = threading.Thread(target=second_scorer)
        thread.start()
        time.sleep(0.5)
        first.commit()
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], IntegrityError)
    with factory() as session:
        assert len(session.scalars(select(Alert)).all()) == 1


def test_concurrent_start_ups_migrate_once(postgres_url: str) -> None:
    # Several workers start together at scale; the advisory lock serialises them.
    errors: list[BaseException] = []

    def start_up() -> None:
        try:
            upgrade(postgres_url)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=start_up) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    eng = make_engine(postgres_url)
    assert "work_orders" in inspect(eng).get_table_names()
    eng.dispose()
