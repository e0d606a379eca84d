"""The scoring pipeline over an in-memory store: commissioning, persistence, alerts, restarts."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import Alert, WorkOrder
from cloud.domain.verdicts import record_verdict
from cloud.pipeline import ScoringPipeline
from cloud.settings import CloudSettings
from ironwatch.wire import FeatureRecord

from .conftest import Fleet, MemoryStore, seeded_session_factory


def _alerts(factory: sessionmaker[Session]) -> list[Alert]:
    with factory() as session:
        return list(session.scalars(select(Alert)).all())


def _work_orders(factory: sessionmaker[Session]) -> list[WorkOrder]:
    with factory() as session:
        return list(session.scalars(select(WorkOrder)).all())


def test_commissioning_happens_once_per_asset(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    now = fleet.emit(20)
    first = pipeline.run_once(now)
    assert first.rows_commissioning == 60 and first.commissioned == []
    now = fleet.emit(20)
    second = pipeline.run_once(now)
    # 10 more rows per asset complete the 30-record baseline; the other 10 are scored.
    assert second.rows_commissioning == 30
    assert sorted(second.commissioned) == ["fan-02/de_radial", "motor-03/de_radial",
                                           "pump-01/de_radial"]
    assert second.rows_scored == 30
    third = pipeline.run_once(fleet.emit(10))
    assert third.commissioned == [] and third.rows_commissioning == 0 and third.rows_scored == 30
    assert pipeline.state.baseline.version == 1


def test_healthy_fleet_stays_quiet(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    for _ in range(8):
        pipeline.run_once(fleet.emit(25))
    assert _alerts(session_factory) == []
    assert _work_orders(session_factory) == []


def test_degrading_asset_opens_one_alert_and_one_work_order(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    pipeline.run_once(fleet.emit(40))
    for _ in range(6):
        pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.06}))
    alerts = _alerts(session_factory)
    assert [a.asset_id for a in alerts] == ["pump-01"]
    alert = alerts[0]
    assert alert.state == "open"
    moved = {m["feature"] for m in alert.evidence["moved_features"]}
    assert {"env_bpfo_ms2", "velocity_rms_mms"} <= moved
    assert alert.evidence["persistence"]["needed"] == 3
    assert alert.model_version.endswith("baseline.1")
    orders = _work_orders(session_factory)
    assert len(orders) == 1 and orders[0].asset_id == "pump-01"
    assert orders[0].priority in ("P0", "P1", "P2")
    assert orders[0].respond_by > orders[0].created_at


def test_single_spike_does_not_open_an_alert(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    pipeline.run_once(fleet.emit(40))
    report = pipeline.run_once(fleet.emit(10, spike_at={"fan-02": 4}))
    assert report.over_threshold >= 1
    pipeline.run_once(fleet.emit(10))
    assert _alerts(session_factory) == []


def test_restart_keeps_the_baseline_and_the_cursor(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    pipeline.run_once(fleet.emit(40))
    assert pipeline.state.baseline.version == 1
    restarted = ScoringPipeline(store, session_factory, settings)
    assert restarted.models.fitted
    report = restarted.run_once(fleet.emit(5))
    # Only the 15 new rows are read, and none goes back into commissioning.
    assert report.rows_read == 15 and report.rows_commissioning == 0
    assert report.rows_scored == 15 and report.commissioned == []
    assert restarted.state.baseline.version == 1


def test_alert_clears_after_the_fault_goes_away(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    pipeline.run_once(fleet.emit(40))
    for _ in range(5):
        pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.08}))
    assert len(_alerts(session_factory)) == 1
    # Repaired: healthy windows again; the domain's hysteresis needs rounds and time.
    for _ in range(5):
        pipeline.run_once(fleet.emit(10))
    with session_factory() as session:
        states = session.scalars(select(Alert.state)).all()
        assert states == ["cleared"]
        assert session.scalar(select(func.count()).select_from(WorkOrder)) == 1


def test_quantised_transmitter_values_do_not_alarm(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    """A Modbus-like point: four features, temperature in 0.1 °C steps, often no spread."""
    pipeline = ScoringPipeline(store, session_factory, settings)
    rng = np.random.default_rng(5)
    seq = 10_000
    for _ in range(8):
        now = fleet.emit(20)
        records = []
        for k in range(20):
            temperature = 47.5 + 0.1 * float(rng.random() < 0.3)
            records.append(FeatureRecord(
                seq=seq, asset_id="motor-03", point="transmitter",
                ts=now - timedelta(seconds=20 - k), window_s=1.0,
                features={"temperature_c": temperature,
                          "velocity_rms_mms": round(1.54 + rng.normal(0, 0.002), 2),
                          "accel_rms_ms2": round(1.33 + rng.normal(0, 0.004), 2),
                          "accel_peak_ms2": 5.5 + rng.normal(0, 0.2)},
            ))
            seq += 1
        store.write("gw-1", records)
        pipeline.run_once(now)
    assert "motor-03/transmitter" in pipeline.state.baseline.rows
    assert _alerts(session_factory) == []


def test_new_alert_waits_briefly_for_the_requested_waveform(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    asked: list[tuple[str, str | None]] = []

    def request(asset_id: str, point: str | None, actor: str) -> str:
        asked.append((asset_id, point))
        return "cmd-1"

    pipeline = ScoringPipeline(store, session_factory, settings, request_snapshot=request)
    pipeline.run_once(fleet.emit(40))
    now = fleet.emit(10, degrade={"pump-01": 0.3})
    held = pipeline.run_once(now)
    assert asked == [("pump-01", "de_radial")] and held.alerts_upserted == []
    # No waveform within the wait: the alert opens unclassified, asked only once meanwhile.
    later = pipeline.run_once(now + timedelta(seconds=20))
    assert len(later.alerts_upserted) == 1 and len(asked) == 1
    assert [a.failure_mode for a in _alerts(session_factory)] == ["unknown_anomaly"]


def test_a_wait_ends_with_its_anomaly_and_the_next_alert_waits_afresh(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    """An anomaly that settles before its held alert opens ends the wait: when the machine
    departs again, its new alert is held for a waveform again rather than opening at once."""
    asked: list[str] = []

    def request(asset_id: str, point: str | None, actor: str) -> str:
        asked.append(asset_id)
        return f"cmd-{len(asked)}"

    pipeline = ScoringPipeline(store, session_factory, settings, request_snapshot=request)
    pipeline.run_once(fleet.emit(40))
    assert not pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.3})).alerts_upserted
    assert pipeline.state.waiting_assets() == {"pump-01"}
    fleet.progress["pump-01"] = 0  # back to healthy before the alert opened
    pipeline.run_once(fleet.emit(10))
    assert not pipeline.state.keys["pump-01/de_radial"].raised
    assert pipeline.state.waiting_assets() == set() and _alerts(session_factory) == []
    again = pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.3}))
    assert asked == ["pump-01", "pump-01"] and again.alerts_upserted == []
    assert pipeline.state.waiting_assets() == {"pump-01"}


def test_false_alarm_verdict_raises_the_threshold_and_keeps_quiet(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    """A machine that settled at a new, harmless level: judged a false alarm once, then quiet."""
    pipeline = ScoringPipeline(store, session_factory, settings)
    pipeline.run_once(fleet.emit(40))
    pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.05}))
    now = fleet.emit(10, degrade={"pump-01": 0.05}, hold=True)
    pipeline.run_once(now)
    alerts = _alerts(session_factory)
    assert len(alerts) == 1
    with session_factory() as session:
        record_verdict(session, alerts[0].id, verdict="false_alarm", actor="engineer", now=now)
        session.commit()
    report = pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.05}, hold=True))
    assert report.verdicts_applied == 1
    for _ in range(3):
        pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.05}, hold=True))
    assert [a.state for a in _alerts(session_factory)] == ["resolved"]


def test_stale_repeats_are_neither_commissioned_nor_scored(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    """A burst sensor between bursts: the gateway repeats the last window flagged stale.

    Those repeats are not measurements: a baseline built from one real window and its
    copies would make the next healthy window look anomalous on every bearing.
    """
    pipeline = ScoringPipeline(store, session_factory, settings)
    fleet.emit(5)
    # Each real window is followed by 9 stale copies of itself, for every asset.
    for gw, record in list(store.rows):
        for i in range(1, 10):
            copy = record.model_copy(update={
                "seq": 10_000 + record.seq * 10 + i, "stale": True,
                "ts": record.ts + timedelta(seconds=5 * i),
            })
            store.rows.append((gw, copy))
    report = pipeline.run_once(fleet.t + timedelta(minutes=5))
    assert report.rows_stale == 5 * 9 * 3
    assert report.rows_read == 5 * 3
    assert report.rows_commissioning == 5 * 3
    assert all(pipeline.state.baseline.count(k) == 5 for k in pipeline.state.keys)


def test_four_bearing_shaft_gives_one_alert_on_the_failing_point(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    """One machine, four measurement points: the failing bearing's vibration reaches its
    neighbours attenuated (×0.3 next door, ×0.1 further). One alert for the machine,
    localised to the point whose evidence is strongest."""
    from .conftest import HEALTHY, STEP

    pipeline = ScoringPipeline(store, session_factory, settings)
    rng = np.random.default_rng(11)
    transmitted = {"b1": 0.3, "b2": 1.0, "b3": 0.3, "b4": 0.1}
    seq = 50_000

    def emit(windows: int, growth_per_window: float, progress: int) -> int:
        nonlocal seq
        for _ in range(windows):
            fleet.t += STEP
            progress += 1 if growth_per_window else 0
            g = float(np.exp(growth_per_window * progress))
            records = []
            for point, share in transmitted.items():
                feats = {k: v * float(np.exp(rng.normal(0, 0.05))) for k, v in HEALTHY.items()}
                feats["skewness"] = float(rng.normal(0, 0.05))
                for name in ("env_bpfo_ms2", "velocity_rms_mms", "kurtosis"):
                    feats[name] *= 1.0 + share * (g - 1.0)
                records.append(FeatureRecord(
                    seq=seq, asset_id="pump-01", point=point, ts=fleet.t, window_s=1.0,
                    features=dict(feats)))
                seq += 1
            store.write("gw-1", records)
        return progress

    progress = emit(40, 0.0, 0)
    pipeline.run_once(fleet.t + timedelta(seconds=1))
    for _ in range(6):
        progress = emit(10, 0.06, progress)
        pipeline.run_once(fleet.t + timedelta(seconds=1))
    alerts = [a for a in _alerts(session_factory) if a.asset_id == "pump-01"]
    assert len(alerts) == 1, [(a.failure_mode, a.evidence.get("point")) for a in alerts]
    assert alerts[0].evidence["point"] == "b2"
    orders = [w for w in _work_orders(session_factory) if w.asset_id == "pump-01"]
    assert len(orders) == 1


def test_detector_is_calibrated_for_the_points_capture_time_spacing(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    """One window a minute, or one every 5 s: the same yearly false-alarm budget means a
    12× smaller chance per window for the faster point; the spacing comes from capture
    time, and survives a restart."""
    slow = ScoringPipeline(store, session_factory, settings)
    slow.run_once(fleet.emit(40))
    assert slow.models.window_spacing_s == 60.0

    # The same 40 windows of each asset, 5 s apart in capture time instead of 60 s.
    fast_store = MemoryStore()
    start = store.rows[0][1].ts
    fast_store.rows = [
        (gw, r.model_copy(update={"ts": start + timedelta(seconds=5 * (i // 3))}))
        for i, (gw, r) in enumerate(store.rows)
    ]
    fast_settings = settings.model_copy(update={"data_dir": settings.data_dir / "fast"})
    # Scoring state lives in the database: the second plant gets its own.
    fast_factory = seeded_session_factory()
    fast = ScoringPipeline(fast_store, fast_factory, fast_settings)
    fast.run_once(start + timedelta(hours=1))
    assert fast.models.window_spacing_s == 5.0
    restarted = ScoringPipeline(fast_store, fast_factory, fast_settings)
    assert restarted.models.window_spacing_s == 5.0
