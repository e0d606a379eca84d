"""RUL on the feature that moved most, open-ended intervals kept, unexplained diagnoses.

The case from the field: a bearing's 4–8 kHz band rose far above commissioning while its
10–1000 Hz velocity barely moved, and the RUL was discarded because its upper bound was
unbounded; a sick signal matching no known fault must open an alert that says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import Alert, WorkOrder
from cloud.pipeline import ScoringPipeline
from cloud.pipeline._model_suite import ModelSuite
from cloud.settings import CloudSettings
from ironwatch.wire import FeatureRecord, WaveformSnapshot

from .conftest import ASSETS, HEALTHY, STEP, T0, MemoryStore

PUMP = "pump-01"
BAND = "band_4k_8k_rms_ms2"
BANDS = {"band_0k_1k_rms_ms2": 1.5, "band_1k_2k_rms_ms2": 0.6, "band_2k_4k_rms_ms2": 0.4,
         BAND: 0.3}
SHAFT_HZ = 1480.0 / 60.0
FS = 20_000.0


class BandPlant:
    """Feature records with band energies; the pump's 4–8 kHz band grows, velocity stays."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.rng = np.random.default_rng(3)
        self.seq = 0
        self.t = T0
        self.grown = 0

    def emit(self, windows: int, *, band_growth: float = 0.0) -> datetime:
        for _ in range(windows):
            self.t += STEP
            records = []
            if band_growth:
                self.grown += 1
            for asset in ASSETS:
                feats = {k: v * float(np.exp(self.rng.normal(0, 0.04)))
                         for k, v in {**HEALTHY, **BANDS}.items()}
                feats["skewness"] = float(self.rng.normal(0, 0.05))
                if asset == PUMP:
                    feats[BAND] *= float(np.exp(band_growth * self.grown))
                records.append(FeatureRecord(seq=self.seq, asset_id=asset, point="de_radial",
                                             ts=self.t, window_s=1.0, features=dict(feats)))
                self.seq += 1
            self.store.write("gw-1", records)
        return self.t + timedelta(seconds=1)


def _pump_alert(factory: sessionmaker[Session]) -> Alert:
    with factory() as session:
        [alert] = session.scalars(select(Alert).where(Alert.asset_id == PUMP)).all()
        return alert


def test_a_rising_band_gives_a_rul_while_velocity_stays_flat(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    plant = BandPlant(store)
    pipeline.run_once(plant.emit(40))
    for _ in range(6):
        pipeline.run_once(plant.emit(10, band_growth=0.02))
    alert = _pump_alert(session_factory)
    rul = alert.evidence["rul_hours"]
    assert rul["health_indicator"] == BAND
    # Velocity never left its healthy level: the old velocity-only RUL had nothing to trend.
    assert abs(alert.evidence["velocity_rms_mms"] / HEALTHY["velocity_rms_mms"] - 1) < 0.2
    assert rul["moved_sd"] > 10
    # Band energy fails at ten times its healthy level (+20 dB).
    assert abs(rul["failure_level"] / rul["healthy_level"] - 10) < 1e-3
    low, median, high = alert.rul_low_h, alert.rul_median_h, alert.rul_high_h
    assert low is not None and median is not None and high is not None
    assert 0 < low <= median <= high
    assert rul["open_ended"] is False
    # State stays small: a quiet point keeps only the lead-in (300 s of 1-min windows);
    # the degrading one keeps its history since onset, and both survive a restart.
    quiet = pipeline.state.keys["fan-02/de_radial"]
    assert {len(v) for v in quiet.trend.values()} == {6}
    assert "temperature_c" not in quiet.trend and BAND in quiet.trend
    pump = pipeline.state.keys[f"{PUMP}/de_radial"]
    assert pump.onset_s is not None
    since_lead_in = sum(t >= pump.onset_s - 300 for t in pump.hi_t_s)
    assert len(pump.hi_t_s) > len(pump.trend[BAND]) >= since_lead_in >= 20
    # A restart: state from the database, the raised point's history from the store.
    reloaded = ScoringPipeline(store, session_factory, settings).state
    assert reloaded.keys[f"{PUMP}/de_radial"].trend == pump.trend


def test_an_open_ended_rul_keeps_p10_and_p50_and_still_plans_the_work(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    # A slow rise: the likely failure is within the 3 h horizon, the pessimistic tail not.
    models = ModelSuite(rul_horizon_h=3.0)
    pipeline = ScoringPipeline(store, session_factory, settings, models=models)
    plant = BandPlant(store)
    pipeline.run_once(plant.emit(40))
    for _ in range(6):
        pipeline.run_once(plant.emit(10, band_growth=0.008))
    alert = _pump_alert(session_factory)
    rul = alert.evidence["rul_hours"]
    assert rul["health_indicator"] == BAND
    assert alert.rul_low_h is not None and alert.rul_median_h is not None
    assert 0 < alert.rul_low_h <= alert.rul_median_h <= 3.0
    assert alert.rul_high_h is None
    assert rul["high"] is None and rul["beyond_horizon"] is True and rul["open_ended"] is True
    assert rul["horizon_h"] == 3.0 and 0 < rul["probability_beyond_horizon"] < 0.5
    with session_factory() as session:
        [order] = session.scalars(select(WorkOrder)).all()
    assert order.alert_id == alert.id and order.priority == "P0"
    # Planned from the low bound: done before P10 of the remaining life runs out.
    assert order.planned_for is not None
    assert order.planned_for <= order.created_at + timedelta(hours=alert.rul_low_h)


def _impacts(rate_hz: float, seconds: float = 4.0, gain: float = 35.0) -> np.ndarray:
    """A 4.5 kHz resonance rung at `rate_hz` plus unit-variance noise."""
    rng = np.random.default_rng(6)
    n = round(seconds * FS)
    t = np.arange(n) / FS
    x = np.zeros(n)
    x[(np.arange(0.0, seconds, 1.0 / rate_hz) * FS).astype(int)] = 1.0
    ring_t = t[: round(0.004 * FS)]
    ring = np.exp(-900.0 * ring_t) * np.sin(2 * np.pi * 4500.0 * ring_t)
    return gain * np.convolve(x, ring)[:n] + rng.normal(0.0, 1.0, n)


def _snapshot(samples: np.ndarray, ts: datetime) -> WaveformSnapshot:
    return WaveformSnapshot(
        gateway_id="gw-1", seq=1, sent_at=ts, asset_id=PUMP, point="de_radial", ts=ts,
        sample_rate_hz=FS, speed_rpm=1480.0, samples_f32le_b64=WaveformSnapshot.pack(samples),
    )


def test_an_unexplained_diagnosis_opens_an_alert_that_says_so(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    # Impacts at 4.27x shaft speed: no defect line of the configured bearing within 9 %.
    snaps: dict[str, WaveformSnapshot] = {}
    models = ModelSuite(lambda asset, point: snaps.get(asset))
    pipeline = ScoringPipeline(store, session_factory, settings, models=models)
    plant = BandPlant(store)
    pipeline.run_once(plant.emit(40))
    for _ in range(4):
        now = plant.emit(10, band_growth=0.02)
        snaps[PUMP] = _snapshot(_impacts(4.27 * SHAFT_HZ), plant.t)
        pipeline.run_once(now)
    alert = _pump_alert(session_factory)
    assert alert.failure_mode == "unexplained"
    diagnosis = alert.evidence["diagnosis"]
    assert diagnosis["fault"] == "unexplained" and diagnosis["failure_mode_code"] == "VIB"
    assert abs(diagnosis["line_families"][0]["order"] - 4.27) < 0.05
    with session_factory() as session:
        [order] = session.scalars(select(WorkOrder)).all()
    # Its own catalogue entry, not the unclassified-anomaly fallback.
    assert order.failure_mode == "unexplained"
    assert "line families" in " ".join(order.suggested_actions)


def test_the_commissioning_level_lets_an_elevated_plain_signal_read_unexplained(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    # Gaussian noise at 3x the commissioning accel RMS (2 m/s2): no lines, but not healthy.
    snaps: dict[str, WaveformSnapshot] = {}
    models = ModelSuite(lambda asset, point: snaps.get(asset))
    pipeline = ScoringPipeline(store, session_factory, settings, models=models)
    plant = BandPlant(store)
    pipeline.run_once(plant.emit(40))
    noise = np.random.default_rng(8).normal(0.0, 3.0 * HEALTHY["accel_rms_ms2"], round(2 * FS))
    for _ in range(4):
        now = plant.emit(10, band_growth=0.02)
        snaps[PUMP] = _snapshot(noise, plant.t)
        pipeline.run_once(now)
    alert = _pump_alert(session_factory)
    assert alert.failure_mode == "unexplained"
    assert abs(alert.evidence["diagnosis"]["measurements"]["accel_rms_ratio"] - 3.0) < 0.2
