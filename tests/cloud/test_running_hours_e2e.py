"""A machine that runs 500 h opens its maintenance work order without anyone typing hours.

Telemetry with capture times spanning 520 h goes through a real Mosquitto into the real
ingestion worker and telemetry store; the scoring round accounts the running hours on the
assets (SQLite and a real PostgreSQL for the relational database), and the maintenance
check opens the plan's work order. A silent gateway earns nothing, an idle machine earns
nothing, and a scorer that lost its state and reads everything again adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from cloud.db import (
    Asset,
    ScoringAsset,
    ScoringPoint,
    SessionFactory,
    WorkOrder,
    make_engine,
    make_session_factory,
    upgrade,
)
from cloud.domain import seed_fleet
from cloud.domain.reminders import check_maintenance_plans, create_plan
from cloud.ingest import IngestConfig, IngestionWorker, MemoryAssetRegistry
from cloud.pipeline import ScoringPipeline
from cloud.settings import CloudSettings
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.mqtt import BrokerSettings
from ironwatch.wire import FeatureRecord, TelemetryMessage
from ironwatch_app.local_servers import Mosquitto
from ironwatch_testing.cloud_fleet import HEALTHY_FEATURES, SnapshotGateways, wait_for

pytestmark = pytest.mark.integration

SPAN_H = 520
STEP = timedelta(minutes=10)  # the gap cap itself: still counts
SILENCE = (timedelta(hours=200), timedelta(hours=203))  # the pump's gateway says nothing
FLEET = {
    "gateways": [{"id": "gw-a"}],
    "assets": [
        {"id": "pump-01", "gateway_id": "gw-a", "kind": "pump"},
        {"id": "fan-02", "gateway_id": "gw-a", "kind": "fan"},
        {"id": "motor-03", "gateway_id": "gw-a", "kind": "motor"},
    ],
}


def _features(asset: str, age: timedelta) -> dict[str, float | None]:
    feats: dict[str, float | None] = dict(HEALTHY_FEATURES)
    if asset == "pump-01":
        feats["speed_rpm"] = 1480.0
    elif asset == "fan-02":  # stopped: no speed, only the floor's vibration
        feats["speed_rpm"] = 0.0
        feats["velocity_rms_mms"] = 0.05
    else:  # no tachometer: runs (by vibration) for the first 100 h, then stands still
        feats["velocity_rms_mms"] = 1.2 if age < timedelta(hours=100) else 0.05
    return feats


def _messages(start: datetime) -> tuple[list[tuple[str, TelemetryMessage]], dict[str, float]]:
    """The three machines' records, 500 a message, and each one's true running hours."""
    records: list[FeatureRecord] = []
    expected = dict.fromkeys(("pump-01", "fan-02", "motor-03"), 0.0)
    last: dict[str, tuple[datetime, bool]] = {}
    n = int(timedelta(hours=SPAN_H) / STEP)
    for i in range(n + 1):
        age = i * STEP
        for asset in expected:
            if asset == "pump-01" and SILENCE[0] < age < SILENCE[1]:
                continue
            ts = start + age
            feats = _features(asset, age)
            running = (feats.get("speed_rpm") or 0) > 0 or (
                "speed_rpm" not in feats and (feats["velocity_rms_mms"] or 0) > 0.35
            )
            before, ran = last.get(asset, (ts, False))
            if running and ran and ts - before <= timedelta(minutes=10):
                expected[asset] += (ts - before) / timedelta(hours=1)
            last[asset] = (ts, running)
            records.append(FeatureRecord(seq=len(records), asset_id=asset, point="de_radial",
                                         ts=ts, window_s=1.0, features=feats))
    messages = [
        ("gw-a", TelemetryMessage(gateway_id="gw-a", epoch="00000000000a0001",
                                  seq=records[k].seq, sent_at=datetime.now(UTC),
                                  records=records[k : k + 500]))
        for k in range(0, len(records), 500)
    ]
    return messages, expected


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionFactory]:
    url = (f"sqlite:///{tmp_path / 'ironwatch.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_fleet(session, FLEET)
        session.commit()
    yield factory
    engine.dispose()


def test_500_running_hours_from_telemetry_open_the_maintenance_work_order(
    database: SessionFactory, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=SPAN_H)
    with database() as session:
        plan = create_plan(session, asset_id="pump-01", interval_hours=500, now=start,
                           tasks=["Regrease both bearings"], parts=["grease cartridge"])
        create_plan(session, asset_id="fan-02", interval_hours=500, now=start)
        create_plan(session, asset_kind="motor", interval_hours=500, now=start)
        session.commit()
    messages, expected = _messages(start)
    store = SqliteTelemetryStore(tmp_path / "telemetry.db")
    worker = IngestionWorker(
        IngestConfig(broker=BrokerSettings(host=mosquitto.host, port=mosquitto.port),
                     client_id="ingest-hours"),
        store, MemoryAssetRegistry({"gw-a": {"pump-01", "fan-02", "motor-03"}}),
    )
    worker.start()
    gateway = SnapshotGateways(mosquitto.host, mosquitto.port, ("gw-a",))
    total = sum(len(m.records) for _, m in messages)
    try:
        gateway.publish(messages)
        wait_for(lambda: worker.stats.stored >= total, 60)
    finally:
        gateway.close()
        worker.stop()
    settings = CloudSettings(data_dir=tmp_path / "data", commissioning_records=30)
    try:
        first = ScoringPipeline(store, database, settings)
        report = first.run_once(now + timedelta(seconds=1))
        assert report.rows_read == total
        with database() as session:
            hours = {a.id: a.running_hours for a in session.scalars(select(Asset))}
            # The silence costs its 3 h; nothing else is lost.
            assert expected["pump-01"] == pytest.approx(SPAN_H - 3)
            assert hours == pytest.approx(expected)
            assert hours["fan-02"] == 0.0 and hours["motor-03"] == pytest.approx(100.0 - 1 / 6)

            opened = check_maintenance_plans(session, now)
            session.commit()
            assert [(w.asset_id, w.source, w.failure_mode) for w in opened] == [
                ("pump-01", "reminder", "scheduled_service")]
            assert opened[0].suggested_actions == ["Regrease both bearings"]
            assert f"plan '{plan.name}'" in opened[0].priority_reason

        # A scorer that lost its state reads all 520 h again: no hour counts twice.
        # (Scoring state lives in the database: it is lost there, after the scorer stopped.)
        first.stop()
        with database() as session:
            session.execute(delete(ScoringPoint))
            session.execute(delete(ScoringAsset))
            session.commit()
        again = ScoringPipeline(store, database, settings.model_copy(
            update={"data_dir": tmp_path / "fresh"}))
        assert again.run_once(now + timedelta(seconds=2)).rows_read == total
        with database() as session:
            assert {a.id: a.running_hours for a in session.scalars(select(Asset))} == (
                pytest.approx(expected))
            assert check_maintenance_plans(session, now + timedelta(hours=1)) == []
            assert len(session.scalars(select(WorkOrder)).all()) == 1
    finally:
        store.close()
