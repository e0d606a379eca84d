"""A takeover carries every piece of scoring state: the protection rules' last readings and
the snapshot requests in flight (real PostgreSQL, two pipelines as two workers).

Worker A scores the fleet alone and is then "killed": it stops renewing without giving its
leases back. Once its lease has run out (a wall clock the test moves), worker B takes every
asset over and must decide exactly as A would have.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import (
    Alert,
    ScoringPoint,
    ScoringSnapshotRequest,
)
from cloud.pipeline import ModelSuite, ScoringPipeline
from cloud.pipeline._leases import Leases
from cloud.settings import CloudSettings
from ironwatch.wire import FeatureRecord, WaveformSnapshot
from ironwatch_testing.cloud_fleet import SHAFT_RPM, outer_race_waveform

from .conftest import ASSETS, HEALTHY, T0, Fleet, MemoryStore, WallClock

pytestmark = pytest.mark.integration

LEASE_S = 10.0
PUMP, FAN = "pump-01", "fan-02"


class Readings:
    """One window per asset per call, each with the temperature the test gives it."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.t = T0
        self.seq = 0

    def emit(self, temperature_c: dict[str, float]) -> datetime:
        self.t += timedelta(seconds=10)
        records = []
        for asset in ASSETS:
            features: dict[str, float | None] = {
                **HEALTHY, "temperature_c": temperature_c.get(asset, 50.0)}
            records.append(FeatureRecord(seq=self.seq, asset_id=asset, point="de_radial",
                                         ts=self.t, window_s=1.0, features=features))
            self.seq += 1
        self.store.write("gw-1", records)
        return self.t + timedelta(seconds=1)


def _alerts(factory: sessionmaker[Session]) -> list[Alert]:
    with factory() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def _worker(
    name: str, store: MemoryStore, factory: sessionmaker[Session], settings: CloudSettings,
    wall: WallClock, **kw: object,
) -> ScoringPipeline:
    leases = Leases(factory, lease_s=LEASE_S, holder=name, wall_clock=wall)
    return ScoringPipeline(store, factory, settings, leases=leases, **kw)  # type: ignore[arg-type]


def test_the_protection_rules_decide_after_a_takeover_on_the_readings_before_it(
    store: MemoryStore, pg_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    """The rule alarms on the median of a point's last three temperatures (limit 85 °C).

    The pump reads 70 and 90 °C under A (median 80: no alarm), then 95 under B: the
    median of the three is 90, exactly one alarm. The fan reads 60 and 60 under A, then
    one 99 °C spike under B: median 60, no alarm, as A would have decided. A worker
    starting from nothing would alarm on the spike alone and report the pump at 95.
    """
    wall = WallClock()
    plant = Readings(store)
    a = _worker("a", store, pg_factory, settings, wall)
    a.run_once(plant.emit({PUMP: 70.0, FAN: 60.0}))
    a.run_once(plant.emit({PUMP: 90.0, FAN: 60.0}))
    assert a.leases.mine == set(ASSETS) and _alerts(pg_factory) == []
    with pg_factory() as session:
        saved = {p.key: p.protect_temperature_c for p in session.scalars(select(ScoringPoint))}
    assert saved[f"{PUMP}/de_radial"] == [70.0, 90.0]
    assert saved[f"{FAN}/de_radial"] == [60.0, 60.0]

    wall.t += LEASE_S + 1.0  # A is gone: its lease runs out unrenewed
    b = _worker("b", store, pg_factory, settings, wall)
    report = b.run_once(plant.emit({PUMP: 95.0, FAN: 99.0}))
    assert report.assets_gained == 3
    [alert] = _alerts(pg_factory)
    assert (alert.asset_id, alert.failure_mode) == (PUMP, "overheating")
    assert alert.evidence["value"] == 90.0  # median of 70, 90 and 95
    assert report.protection_alerts == [alert.id]
    # The pump stays in alarm on the same alert (median 90); the fan's second hot reading
    # is two of the last three: now it alarms, once.
    report = b.run_once(plant.emit({PUMP: 80.0, FAN: 99.0}))
    alerts = _alerts(pg_factory)
    assert [(x.asset_id, x.failure_mode, x.state) for x in alerts] == [
        (PUMP, "overheating", "open"), (FAN, "overheating", "open")]
    assert alerts[0].id == alert.id and alerts[1].evidence["value"] == 99.0
    # A, had it only stalled, writes nothing for the assets it lost.
    stale = a.run_once(plant.emit({PUMP: 99.0, FAN: 99.0}))
    assert stale.assets_lost == 3 and not stale.protection_alerts
    assert not a.protection.readings
    assert len(_alerts(pg_factory)) == 2


def test_a_restart_keeps_the_protection_readings(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    """SQLite, one process: a restarted service resumes the readings from the database."""
    plant = Readings(store)
    first = ScoringPipeline(store, session_factory, settings)
    first.run_once(plant.emit({PUMP: 70.0, FAN: 60.0}))
    first.run_once(plant.emit({PUMP: 90.0, FAN: 60.0}))
    first.stop()
    restarted = ScoringPipeline(store, session_factory, settings)
    restarted.run_once(plant.emit({PUMP: 95.0, FAN: 99.0}))
    [alert] = _alerts(session_factory)
    assert (alert.asset_id, alert.evidence["value"]) == (PUMP, 90.0)


def _snapshot(ts: datetime) -> WaveformSnapshot:
    return WaveformSnapshot(
        gateway_id="gw-1", seq=1, sent_at=ts, request_id="cmd-1", asset_id=PUMP,
        point="de_radial", ts=ts, sample_rate_hz=20_000.0, speed_rpm=SHAFT_RPM,
        samples_f32le_b64=WaveformSnapshot.pack(outer_race_waveform()),
    )


@pytest.mark.parametrize("waveform", [True, False], ids=["waveform", "no-waveform"])
def test_a_pending_snapshot_request_survives_a_takeover(
    store: MemoryStore, fleet: Fleet, pg_factory: sessionmaker[Session],
    settings: CloudSettings, waveform: bool,
) -> None:
    """A asks the pump's gateway for a waveform and holds the new alert for it; B takes
    over before it arrives and no new window comes. B does not ask again and keeps
    holding within the same wait; the waveform that arrives afterwards is attached to the
    alert, or, if none comes, the alert opens when A's wait (15 s) ends, not a new one."""
    wall = WallClock()
    asked: list[tuple[str, str | None, str]] = []

    def request(asset_id: str, point: str | None, actor: str) -> str:
        asked.append((asset_id, point, actor))
        return f"cmd-{len(asked)}"

    snapshots: dict[str, WaveformSnapshot] = {}

    def worker(name: str) -> ScoringPipeline:
        return _worker(name, store, pg_factory, settings, wall, request_snapshot=request,
                       models=ModelSuite(snapshots=lambda asset, point: snapshots.get(asset)))

    a = worker("a")
    a.run_once(fleet.emit(40))
    asked_at = fleet.emit(10, degrade={PUMP: 0.3})
    held = a.run_once(asked_at)
    assert asked == [(PUMP, "de_radial", "scoring")] and held.alerts_upserted == []
    with pg_factory() as session:
        [saved] = session.scalars(select(ScoringSnapshotRequest)).all()
    assert (saved.asset_id, saved.point, saved.command_id) == (PUMP, "de_radial", "cmd-1")
    assert saved.asked_at_s == saved.waiting_since_s == asked_at.timestamp()

    wall.t += LEASE_S + 1.0  # A is gone
    b = worker("b")
    report = b.run_once(asked_at + timedelta(seconds=5))
    assert report.assets_gained == 3 and report.rows_read == 0
    assert b.state.keys[f"{PUMP}/de_radial"].raised
    # Still the same request and the same wait: not asked again, the alert still held.
    assert len(asked) == 1 and report.snapshots_requested == []
    assert report.alerts_upserted == [] and _alerts(pg_factory) == []

    if waveform:
        # The waveform A asked for arrives after the takeover: B attaches it to the alert.
        snapshots[PUMP] = _snapshot(asked_at + timedelta(seconds=6))
        report = b.run_once(asked_at + timedelta(seconds=7))
    else:
        assert not b.run_once(asked_at + timedelta(seconds=14)).alerts_upserted
        report = b.run_once(asked_at + timedelta(seconds=15))
    [alert] = _alerts(pg_factory)
    assert report.alerts_upserted == [alert.id] and len(asked) == 1
    assert alert.evidence["persistence"]["over_threshold"] == 5  # A's last five windows
    if waveform:
        diagnosis = alert.evidence["diagnosis"]
        assert diagnosis["source"] == "waveform_snapshot"
        assert diagnosis["snapshot_ts_s"] == (asked_at + timedelta(seconds=6)).timestamp()
        assert alert.failure_mode == diagnosis["fault"] != "none"
    else:
        assert alert.failure_mode == "unknown_anomaly"
    with pg_factory() as session:
        [saved] = session.scalars(select(ScoringSnapshotRequest)).all()
    assert saved.waiting_since_s is None and saved.command_id == "cmd-1"


def test_a_restart_keeps_the_snapshot_request_and_the_wait(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    """SQLite, one process restarted while a new alert waits for its waveform."""
    asked: list[str] = []

    def request(asset_id: str, point: str | None, actor: str) -> str:
        asked.append(asset_id)
        return f"cmd-{len(asked)}"

    first = ScoringPipeline(store, session_factory, settings, request_snapshot=request)
    first.run_once(fleet.emit(40))
    asked_at = fleet.emit(10, degrade={PUMP: 0.3})
    assert not first.run_once(asked_at).alerts_upserted and asked == [PUMP]
    first.stop()
    restarted = ScoringPipeline(store, session_factory, settings, request_snapshot=request)
    assert not restarted.run_once(asked_at + timedelta(seconds=14)).alerts_upserted
    report = restarted.run_once(asked_at + timedelta(seconds=15))
    [alert] = _alerts(session_factory)
    assert report.alerts_upserted == [alert.id] and asked == [PUMP]
    assert alert.failure_mode == "unknown_anomaly"
