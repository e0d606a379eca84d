"""Protection rules no verdict can silence; verdicts that cover what was seen, replace, expire.

The case from the field: a pump alarms, an engineer marks the alert "confirmed", then
"false alarm"; the pump then goes from ISO zone B to D (1.7 → 5.1 mm/s) and 48 → 67 °C.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import Alert, WorkOrder
from cloud.domain.verdicts import record_verdict
from cloud.domain.workorders import open_manual, transition
from cloud.pipeline import ScoringPipeline
from cloud.pipeline._protection import PointReadings, protection_findings
from cloud.settings import CloudSettings
from ironwatch.wire import FeatureRecord

from .conftest import ASSETS, HEALTHY, STEP, T0, MemoryStore

PUMP = "pump-01"


class Plant:
    """Feature records for the fleet; the pump's velocity, temperature and BPFO are set."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.rng = np.random.default_rng(11)
        self.seq = 0
        self.t = T0

    def emit(self, windows: int, *, velocity: tuple[float, float] = (1.7, 1.7),
             temperature: tuple[float, float] = (48.0, 48.0), bpfo: float = 1.0) -> datetime:
        """`windows` windows; the pump's velocity and temperature ramp from→to linearly."""
        for w in range(windows):
            self.t += STEP
            f = w / max(windows - 1, 1)
            records = []
            for asset in ASSETS:
                feats = {k: v * float(np.exp(self.rng.normal(0, 0.03))) for k, v in HEALTHY.items()}
                feats["skewness"] = float(self.rng.normal(0, 0.05))
                feats["temperature_c"] = 45.0 + float(self.rng.normal(0, 0.2))
                if asset == PUMP:
                    feats["velocity_rms_mms"] = (velocity[0] + f * (velocity[1] - velocity[0])) \
                        * float(np.exp(self.rng.normal(0, 0.03)))
                    feats["temperature_c"] = temperature[0] + f * (temperature[1] - temperature[0])
                    feats["env_bpfo_ms2"] *= bpfo
                    feats["kurtosis"] *= 1.0 + 0.05 * (bpfo - 1.0)
                records.append(FeatureRecord(seq=self.seq, asset_id=asset, point="de_radial",
                                             ts=self.t, window_s=1.0, features=dict(feats)))
                self.seq += 1
            self.store.write("gw-1", records)
        return self.t + timedelta(seconds=1)


def _open_alerts(factory: sessionmaker[Session]) -> dict[str, Alert]:
    with factory() as session:
        return {a.failure_mode: a for a in session.scalars(
            select(Alert).where(Alert.asset_id == PUMP, Alert.state.in_(("open", "acknowledged")))
        )}


def _verdict(factory: sessionmaker[Session], alert_id: int, verdict: Any, now: datetime) -> None:
    with factory() as session:
        record_verdict(session, alert_id, verdict=verdict, actor="engineer", now=now)
        session.commit()


def _alarmed_pump(
    store: MemoryStore, factory: sessionmaker[Session], settings: CloudSettings
) -> tuple[ScoringPipeline, Plant, Alert, datetime]:
    """Commissioned in zone B at 48 °C, then a BPFO rise the detector alarms on (still B)."""
    pipeline = ScoringPipeline(store, factory, settings)
    plant = Plant(store)
    pipeline.run_once(plant.emit(40))
    now = plant.t
    for _ in range(4):
        now = plant.emit(5, bpfo=6.0, velocity=(1.9, 1.9), temperature=(49.0, 49.0))
        pipeline.run_once(now)
    alerts = _open_alerts(factory)
    assert list(alerts) == ["unknown_anomaly"], alerts
    return pipeline, plant, alerts["unknown_anomaly"], now


def _ratio(pipeline: ScoringPipeline, store: MemoryStore, since: datetime, until: datetime
           ) -> float:
    """The detector's anomaly ratio (>= 1 alarms) of the pump's faulty rows, at its median."""
    frame = store.query(asset_ids=[PUMP], start=since, end=until)
    keys = np.full(len(frame), f"{PUMP}/de_radial")
    ratio, _ = pipeline.models.score(frame.values, list(frame.feature_names), keys)
    return float(np.median(ratio))


def test_false_alarm_verdict_on_a_progressing_fault_still_alarms(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    pipeline, plant, alert, now = _alarmed_pump(store, session_factory, settings)
    _verdict(session_factory, alert.id, "confirmed", now)
    _verdict(session_factory, alert.id, "false_alarm", now)
    report = pipeline.run_once(plant.emit(2, bpfo=6.0, velocity=(1.9, 1.9)))
    assert report.verdicts_seen == 2
    # Zone B to D, 48 to 67 °C, BPFO x40.
    for _ in range(6):
        pipeline.run_once(plant.emit(5, velocity=(2.0, 5.1), temperature=(50.0, 67.0), bpfo=40.0))
    for _ in range(2):
        pipeline.run_once(plant.emit(5, velocity=(5.1, 5.1), temperature=(67.0, 67.0), bpfo=40.0))
    alerts = _open_alerts(session_factory)
    # The detector alarms again: the departure goes far beyond what was judged normal.
    assert "unknown_anomaly" in alerts
    # Zone D is critical whatever the detector does: the rule either raised its own alert
    # or, finding the machine's alert open, lifted it to critical with its evidence.
    [critical] = [a for a in alerts.values() if a.severity == "critical"]
    assert critical.iso_zone == "D"
    rule = critical.evidence if critical.failure_mode == "excessive_vibration" \
        else critical.evidence["protection"]["excessive_vibration"]
    assert rule["rule"] == "iso_zone" and rule["iso_zone"] == "D"
    assert rule["value"] == pytest.approx(5.1, rel=0.1)
    with session_factory() as session:
        orders = session.scalars(select(WorkOrder).where(
            WorkOrder.asset_id == PUMP, WorkOrder.state == "open")).all()
        assert critical.id in {o.alert_id for o in orders}
    # 67 °C is under the default 85 °C limit: no overheating alert.
    assert "overheating" not in alerts


def test_zone_c_warns_and_a_temperature_limit_alarms_from_the_first_window(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    """No baseline needed: the rules hold during commissioning and whatever the detector says."""
    settings = settings.model_copy(update={"temperature_limits_c": {PUMP: 60.0}})
    pipeline = ScoringPipeline(store, session_factory, settings)
    plant = Plant(store)
    report = pipeline.run_once(plant.emit(5, velocity=(3.2, 3.2), temperature=(61.0, 61.0)))
    assert report.rows_commissioning == 15 and report.rows_scored == 0
    alerts = _open_alerts(session_factory)
    assert set(alerts) == {"excessive_vibration", "overheating"}
    assert alerts["excessive_vibration"].severity == "warning"
    assert alerts["excessive_vibration"].iso_zone == "C"
    assert alerts["overheating"].severity == "alarm"
    assert alerts["overheating"].evidence["limit"] == 60.0
    # A false-alarm verdict resolves the alert; the rule raises it again while it holds.
    _verdict(session_factory, alerts["overheating"].id, "false_alarm", plant.t)
    assert "overheating" not in _open_alerts(session_factory)
    pipeline.run_once(plant.emit(1, velocity=(3.2, 3.2), temperature=(61.0, 61.0)))
    assert "overheating" in _open_alerts(session_factory)


def test_a_second_verdict_replaces_the_first_and_is_recomputed_not_stacked(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    pipeline, plant, alert, now = _alarmed_pump(store, session_factory, settings)
    fault_since = alert.opened_at - timedelta(minutes=10)
    before = _ratio(pipeline, store, fault_since, now)
    assert before > 1.0

    _verdict(session_factory, alert.id, "false_alarm", now)
    pipeline.run_once(plant.emit(1))
    lifted = _ratio(pipeline, store, fault_since, now)
    assert lifted < 1.0  # judged normal: these rows no longer alarm

    # On second thought it is a real fault: the lift is undone, not stacked with it.
    _verdict(session_factory, alert.id, "confirmed", now)
    report = pipeline.run_once(plant.emit(1))
    assert report.verdicts_applied == 1
    assert [v["verdict"] for v in pipeline.state.verdict_rows] == ["confirmed"]
    assert _ratio(pipeline, store, fault_since, now) == pytest.approx(before, rel=1e-6)

    # And back to false alarm: one effective verdict, the same lift as the first time.
    _verdict(session_factory, alert.id, "false_alarm", now)
    pipeline.run_once(plant.emit(1))
    assert [v["verdict"] for v in pipeline.state.verdict_rows] == ["false_alarm"]
    assert _ratio(pipeline, store, fault_since, now) == pytest.approx(lifted, rel=1e-6)


def test_verdicts_expire_after_maintenance(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    pipeline, plant, alert, now = _alarmed_pump(store, session_factory, settings)
    fault_since = alert.opened_at - timedelta(minutes=10)
    before = _ratio(pipeline, store, fault_since, now)
    _verdict(session_factory, alert.id, "false_alarm", now)
    pipeline.run_once(plant.emit(1))
    assert len(pipeline.state.verdict_rows) == 1
    # The machine is serviced (an unrelated job, done after the verdict).
    with session_factory() as session:
        wo = open_manual(session, asset_id=PUMP, failure_mode="scheduled_service",
                         priority="P3", title="Regrease bearings", actor="planner", now=plant.t)
        transition(session, wo.id, "in_progress", actor="fitter", now=plant.t)
        transition(session, wo.id, "done", actor="fitter", now=plant.t)
        session.commit()
    report = pipeline.run_once(plant.emit(1))
    assert report.verdicts_expired == 1 and pipeline.state.verdict_rows == []
    assert _ratio(pipeline, store, fault_since, now) == pytest.approx(before, rel=1e-6)


def test_one_window_over_a_boundary_is_no_zone_change() -> None:
    readings = PointReadings("de_radial")
    readings.add([1.8, 1.9, 6.0], [50.0, 50.0, 99.0])  # one spike in each
    assert protection_findings([readings], iso_group=2, foundation="rigid",
                               temperature_limit_c=85.0) == []
    readings.add([6.1], [99.0])  # two of the last three: the median crosses
    found = {f.failure_mode: f for f in protection_findings(
        [readings], iso_group=2, foundation="rigid", temperature_limit_c=85.0)}
    assert found["excessive_vibration"].severity == "critical"
    assert found["excessive_vibration"].limit == 4.5  # group 2, rigid: C/D at 4.5 mm/s
    assert found["overheating"].value == 99.0
    # The worst point of the machine decides, and names itself.
    quiet = PointReadings("nde_radial")
    quiet.add([1.0, 1.0, 1.0], [40.0, 40.0, 40.0])
    both = protection_findings([quiet, readings], iso_group=2, foundation="rigid",
                               temperature_limit_c=85.0)
    assert {f.point for f in both} == {"de_radial"}


def test_an_open_alert_is_lifted_by_a_rule_and_gets_its_work_order(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    """One alert and one work order per machine: the rule lifts the open alert."""
    pipeline = ScoringPipeline(store, session_factory, settings)
    plant = Plant(store)
    pipeline.run_once(plant.emit(40, velocity=(1.2, 1.2)))
    for _ in range(4):
        pipeline.run_once(plant.emit(5, bpfo=6.0, velocity=(1.25, 1.25)))
    [advisory] = _open_alerts(session_factory).values()
    assert advisory.severity == "advisory" and advisory.failure_mode == "unknown_anomaly"
    with session_factory() as session:
        assert session.scalars(select(WorkOrder)).all() == []  # zone A: watch, no job yet
    pipeline.run_once(plant.emit(4, bpfo=6.0, velocity=(5.0, 5.0)))
    [lifted] = _open_alerts(session_factory).values()
    assert lifted.id == advisory.id and lifted.severity == "critical"
    assert lifted.iso_zone == "D"
    assert lifted.evidence["protection"]["excessive_vibration"]["iso_zone"] == "D"
    with session_factory() as session:
        [order] = session.scalars(select(WorkOrder)).all()
        assert order.alert_id == lifted.id and order.priority == "P0"
