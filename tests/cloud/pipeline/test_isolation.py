"""One asset whose model call raises never stops the fleet: skipped, counted, logged once, shown."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from numpy.typing import ArrayLike
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import Alert, WorkOrder
from cloud.pipeline import ModelSuite, ScoringHealth, ScoringPipeline
from cloud.pipeline._model_suite import (
    FALSE_ALARMS_PER_YEAR,
    MIN_SCALE_FRACTION,
    WINDOW_SPACING_S,
)
from cloud.settings import CloudSettings
from models.anomaly import FleetBaseline

from .conftest import Fleet, MemoryStore

BROKEN = "fan-02"


def _alerts(factory: sessionmaker[Session]) -> list[Alert]:
    with factory() as session:
        return list(session.scalars(select(Alert)).all())


def _work_orders(factory: sessionmaker[Session]) -> list[WorkOrder]:
    with factory() as session:
        return list(session.scalars(select(WorkOrder)).all())


def _failure_logs(caplog: pytest.LogCaptureFixture, asset_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.levelno >= logging.ERROR and asset_id in r.getMessage()]


def test_diagnosis_raising_for_one_asset_skips_only_that_asset(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings, caplog: pytest.LogCaptureFixture,
) -> None:
    def snapshots(asset_id: str, point: str | None) -> Any:
        if asset_id == BROKEN:
            raise IndexError("index 793 is out of bounds for axis 0 with size 688")
        return None

    pipeline = ScoringPipeline(store, session_factory, settings,
                               models=ModelSuite(snapshots=snapshots))
    pipeline.run_once(fleet.emit(40))
    reports = [pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.06, BROKEN: 0.06}))
               for _ in range(6)]

    # The healthy neighbour of the failing asset is still scored and alerts as before.
    alerts = _alerts(session_factory)
    assert [a.asset_id for a in alerts if a.model != "ironwatch.protection"] == ["pump-01"]
    # The failing asset's vibration is far into ISO zone D: the protection rule, which
    # needs no model, still raises its alert and work order.
    assert [(a.asset_id, a.failure_mode, a.severity) for a in alerts
            if a.model == "ironwatch.protection"] == [(BROKEN, "excessive_vibration", "critical")]
    assert sorted(w.asset_id for w in _work_orders(session_factory)) == [BROKEN, "pump-01"]
    assert all({"pump-01", "motor-03"} <= r.scored_assets for r in reports)
    failing_rounds = [r for r in reports if BROKEN in r.failed_assets]
    assert len(failing_rounds) >= 3

    state = pipeline.health.asset(BROKEN)
    assert state is not None and state.failure is not None
    assert state.failure.stage == "diagnosis"
    assert state.failure.error.startswith("IndexError: index 793")
    assert state.failure.rounds == len(failing_rounds)
    motor = pipeline.health.asset("motor-03")
    assert motor is not None and motor.failure is None and motor.last_scored_at is not None

    status = pipeline.health.status(reports[-1].at)
    assert status.status == "degraded"
    assert list(status.failing) == [BROKEN]
    assert any(BROKEN in reason and "IndexError" in reason for reason in status.reasons)
    # Logged once with its traceback, not once per round.
    logged = _failure_logs(caplog, BROKEN)
    assert len(logged) == 1 and logged[0].exc_info is not None


class _Detector(FleetBaseline):
    """The real detector, made to raise for one asset's rows while `broken` is set."""

    broken: str | None = BROKEN
    stage = "score"

    def _check(self, asset_ids: ArrayLike | None) -> None:
        # The detector is keyed per (asset, point): "fan-02/de_radial".
        assets = {str(k).split("/")[0] for k in np.asarray(asset_ids).ravel()}
        if self.broken in assets:
            raise FloatingPointError(f"singular baseline for {self.broken}")

    def fit(self, X: Any, y: Any = None, **kw: Any) -> Any:
        if self.stage == "fit":
            self._check(kw.get("asset_ids"))
        return super().fit(X, y, **kw)

    def score_samples(self, X: Any, **kw: Any) -> Any:
        if self.stage == "score":
            self._check(kw.get("asset_ids"))
        return super().score_samples(X, **kw)


def _detector(window_spacing_s: float = WINDOW_SPACING_S) -> _Detector:
    return _Detector(false_alarms_per_year=FALSE_ALARMS_PER_YEAR,
                     scoring_interval_s=window_spacing_s, min_scale_fraction=MIN_SCALE_FRACTION)


@pytest.mark.parametrize("stage", ["score", "fit"])
def test_anomaly_model_raising_for_one_asset_scores_the_rest(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings, caplog: pytest.LogCaptureFixture, stage: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="cloud.pipeline")
    monkeypatch.setattr(_Detector, "stage", stage)
    monkeypatch.setattr(_Detector, "broken", BROKEN)
    pipeline = ScoringPipeline(store, session_factory, settings,
                               models=ModelSuite(detector_factory=_detector))
    pipeline.run_once(fleet.emit(40))
    for _ in range(6):
        report = pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.06}))
        assert report.scored_assets == {"pump-01", "motor-03"}
        assert report.failed_assets == {BROKEN}
        assert report.rows_scored == 20
    assert [a.asset_id for a in _alerts(session_factory)] == ["pump-01"]
    failure = pipeline.health.asset(BROKEN).failure  # type: ignore[union-attr]
    assert failure is not None
    assert failure.stage == ("anomaly" if stage == "score" else "fit")
    assert "FloatingPointError: singular baseline" in failure.error
    assert len(_failure_logs(caplog, BROKEN)) == 1

    if stage == "score":
        # The model is fixed: the asset is scored again and its failure is cleared.
        monkeypatch.setattr(_Detector, "broken", None)
        report = pipeline.run_once(fleet.emit(10))
        assert BROKEN in report.scored_assets and not report.failed_assets
        assert pipeline.health.asset(BROKEN).failure is None  # type: ignore[union-attr]
        assert pipeline.health.status(report.at).status == "ok"
        assert any("recovered" in r.getMessage() for r in caplog.records)


def test_a_failing_round_is_logged_once_and_shows_as_lag(
    store: MemoryStore, session_factory: sessionmaker[Session], settings: CloudSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Down(MemoryStore):
        def query(self, **kw: Any) -> Any:
            raise ConnectionError("telemetry store unreachable")

    pipeline = ScoringPipeline(Down(), session_factory, settings)
    for _ in range(3):
        with pytest.raises(ConnectionError) as info:
            pipeline.run_once(datetime.now(UTC))
        pipeline.health.round_failed(info.value)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert pipeline.health.rounds_failed == 3
    status = pipeline.health.status(datetime.now(UTC) + timedelta(minutes=5))
    assert status.status == "degraded"
    assert "no round completed" in status.reasons[0]
    assert "telemetry store unreachable" in status.reasons[0]


def test_health_lags_after_n_intervals_without_a_round() -> None:
    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    health = ScoringHealth(10.0, lag_rounds=5, min_lag_s=0.0, clock=lambda: t0)
    assert health.status(t0 + timedelta(seconds=49)).status == "ok"
    assert health.status(t0 + timedelta(seconds=51)).status == "degraded"
    health.round_completed(t0 + timedelta(seconds=60))
    assert health.status(t0 + timedelta(seconds=100)).status == "ok"
    late = health.status(t0 + timedelta(seconds=111))
    assert late.status == "degraded" and late.reasons == [
        "scoring lags: last round completed 51 s ago (interval 10 s)"]
    with pytest.raises(ValueError):
        ScoringHealth(0.0)


def test_rul_raising_is_told_apart_from_diagnosis(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from models.rul import ExponentialDegradation

    def broken(self: ExponentialDegradation, *args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(ExponentialDegradation, "predict_rul", broken)
    pipeline = ScoringPipeline(store, session_factory, settings)
    pipeline.run_once(fleet.emit(40))
    for _ in range(6):
        pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.06}))
    failure = pipeline.health.asset("pump-01").failure  # type: ignore[union-attr]
    assert failure is not None and failure.stage == "rul"
    assert failure.error == "ZeroDivisionError: float division by zero"
    # Only its model alert is skipped; the others are scored, the zone D rule still alarms.
    assert [(a.asset_id, a.model) for a in _alerts(session_factory)] == [
        ("pump-01", "ironwatch.protection")]
    motor = pipeline.health.asset("motor-03")
    assert motor is not None and motor.failure is None
