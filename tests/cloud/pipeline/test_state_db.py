"""Scoring state in the database: what a round writes, per-point cursors, refits, the upgrade."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import Alert, ScoringPoint, WorkOrder
from cloud.pipeline import ScoringPipeline
from cloud.settings import CloudSettings
from cloud.telemetry import FeatureFrame

from .conftest import STEP, Fleet, MemoryStore, seeded_session_factory


class CountingStore(MemoryStore):
    """The in-memory store, counting the rows each query returns."""

    def __init__(self) -> None:
        super().__init__()
        self.returned: list[int] = []

    def query(self, **kw: Any) -> FeatureFrame:
        frame = super().query(**kw)
        self.returned.append(len(frame))
        return frame

    def rows_since(self, mark: int) -> int:
        return sum(self.returned[mark:])


def _emit_all_but(fleet: Fleet, silent: str, windows: int) -> None:
    """`windows` windows for every asset but `silent` (a machine switched off)."""
    before = len(fleet.store.rows)
    fleet.emit(windows)
    fleet.store.rows[before:] = [r for r in fleet.store.rows[before:] if r[1].asset_id != silent]


def test_a_round_writes_the_points_it_read_and_baselines_only_while_commissioning(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    commissioning = pipeline.run_once(fleet.emit(40))
    assert commissioning.state_rows_written == 3
    # 30 rows x 13 features x 8 bytes of baseline per point, written once.
    assert commissioning.state_bytes_written > 3 * 30 * 13 * 8
    _emit_all_but(fleet, "fan-02", 10)
    steady = pipeline.run_once(fleet.t + timedelta(seconds=1))
    assert steady.rows_scored == 20
    assert steady.state_rows_written == 2  # the silent fan's row is not rewritten
    assert 0 < steady.state_bytes_written < 2 * 1000
    with session_factory() as session:
        cursors = dict(session.execute(select(ScoringPoint.key, ScoringPoint.cursor_s)).all())
    assert cursors["pump-01/de_radial"] == fleet.t.timestamp()
    assert (cursors["fan-02/de_radial"] or 0.0) < fleet.t.timestamp()


def test_a_silent_asset_is_read_from_its_own_cursor_and_nothing_is_read_twice(
    fleet: Fleet, session_factory: sessionmaker[Session], settings: CloudSettings,
) -> None:
    store = CountingStore()
    fleet.store = store
    pipeline = ScoringPipeline(store, session_factory, settings)
    pipeline.run_once(fleet.emit(40))
    # The fan is silent for two hours of one-minute windows while the others report.
    for _ in range(12):
        mark = len(store.returned)
        _emit_all_but(fleet, "fan-02", 10)
        report = pipeline.run_once(fleet.t + timedelta(seconds=1))
        assert report.rows_read == 20
        # Each round reads what is new, not everything since the fan went quiet.
        assert store.rows_since(mark) <= 2 * 20
    # It comes back and its gateway delivers the backlog: old capture times, all read.
    backlog_from = fleet.t - timedelta(minutes=90)
    mark = len(store.returned)
    fleet.emit(5)
    fan_late = [
        (gw, r.model_copy(update={"seq": 90_000 + i, "ts": backlog_from + i * STEP}))
        for i, (gw, r) in enumerate(x for x in store.rows[-15:] if x[1].asset_id == "fan-02")
    ]
    store.rows.extend(fan_late)
    report = pipeline.run_once(fleet.t + timedelta(seconds=1))
    assert report.rows_read == 15 + len(fan_late)
    assert "fan-02" in report.scored_assets
    again = pipeline.run_once(fleet.t + timedelta(seconds=2))
    assert again.rows_read == 0


def test_a_new_point_is_fitted_alone_and_the_others_keep_their_baselines(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    first = pipeline.run_once(fleet.emit(40))
    assert first.full_fit and first.refitted == 3
    detector: Any = pipeline.models._detector
    before = {a: detector.threshold_[i + 1] for i, a in enumerate(detector.assets_.tolist())}
    # A fourth point starts reporting on the motor: its windows look like the first one's.
    mark = len(store.rows)
    now = fleet.emit(40)
    rows = [
        (gw, r.model_copy(update={"seq": 70_000 + i, "point": "nde_radial"}))
        for i, (gw, r) in enumerate(x for x in store.rows[mark:] if x[1].asset_id == "motor-03")
    ]
    store.rows.extend(rows)
    report = pipeline.run_once(now)
    assert report.commissioned == ["motor-03/nde_radial"]
    assert report.refitted == 2 and not report.full_fit  # the motor's two points
    after = {a: detector.threshold_[i + 1] for i, a in enumerate(detector.assets_.tolist())}
    assert "motor-03/nde_radial" in after
    for key in ("pump-01/de_radial", "fan-02/de_radial"):
        assert after[key] == before[key]


def test_a_restart_resumes_from_the_database_without_any_local_file(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    pipeline.run_once(fleet.emit(40))
    for _ in range(3):
        pipeline.run_once(fleet.emit(10, degrade={"pump-01": 0.08}))
    assert pipeline.state.keys["pump-01/de_radial"].raised
    assert not any(settings.data_dir.rglob("*"))  # nothing was written to disk
    restarted = ScoringPipeline(store, session_factory, settings)
    assert restarted.models.fitted
    pump = restarted.state.keys["pump-01/de_radial"]
    assert pump.raised and pump.onset_s == pipeline.state.keys["pump-01/de_radial"].onset_s
    assert pump.flags_tail == pipeline.state.keys["pump-01/de_radial"].flags_tail
    assert restarted.state.open_modes == pipeline.state.open_modes
    report = restarted.run_once(fleet.emit(5, degrade={"pump-01": 0.08}))
    assert report.rows_read == 15 and report.rows_commissioning == 0
    # The same alert and work order, updated: none opened twice.
    assert report.alerts_upserted == [1] and set(report.work_orders) == {1}
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(WorkOrder)) == 1
        assert session.scalar(select(func.count()).select_from(Alert)) == 1


def test_the_state_file_of_an_earlier_version_is_imported_once(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    # A state directory as the file-based version left it.
    old = ScoringPipeline(store, session_factory, settings)
    old.run_once(fleet.emit(40))
    state_dir = settings.data_dir / "pipeline"
    old.state.save(state_dir)
    fresh = seeded_session_factory()
    upgraded = ScoringPipeline(store, fresh, settings)
    assert not (state_dir / "state.json").exists()
    assert (state_dir / "state.json.imported").exists()
    assert upgraded.models.fitted and upgraded.state.baseline.version == 1
    with fresh() as session:
        assert session.scalar(select(func.count()).select_from(ScoringPoint)) == 3
    report = upgraded.run_once(fleet.emit(5))
    assert report.rows_read == 15 and report.rows_commissioning == 0
    assert report.rows_scored == 15


def test_condition_fill_is_each_keys_median_of_its_finite_values() -> None:
    from cloud.pipeline._model_suite import ModelSuite

    keys = np.array(["b", "a", "b", "a", "b", "c"])
    cond = np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 5.0], [4.0, np.nan],
                     [np.nan, 7.0], [np.nan, np.nan]])
    fill = ModelSuite()._condition_fill(keys, cond)
    expected = np.zeros_like(cond)
    for k in set(keys.tolist()):
        rows = keys == k
        for j in range(cond.shape[1]):
            col = cond[rows, j]
            expected[rows, j] = np.median(col[np.isfinite(col)]) if np.isfinite(col).any() else 0
    np.testing.assert_array_equal(fill, expected)



def test_a_restart_during_commissioning_reads_the_baseline_so_far_back_from_the_store(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    first = pipeline.run_once(fleet.emit(20))
    assert first.rows_commissioning == 60 and first.state_bytes_written < 3 * 1000
    restarted = ScoringPipeline(store, session_factory, settings)
    for key in ("pump-01/de_radial", "fan-02/de_radial"):
        np.testing.assert_array_equal(
            restarted.state.baseline.rows[key], pipeline.state.baseline.rows[key])
    second = restarted.run_once(fleet.emit(20))
    assert second.rows_commissioning == 30 and len(second.commissioned) == 3
    assert second.rows_scored == 30
    again = ScoringPipeline(store, session_factory, settings)
    for key in restarted.state.baseline.rows:
        np.testing.assert_array_equal(
            again.state.baseline.rows[key], restarted.state.baseline.rows[key])


def test_a_new_point_is_read_back_to_its_first_row_and_commissions_at_once(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    _emit_all_but(fleet, "fan-02", 40)
    first = pipeline.run_once(fleet.t + timedelta(seconds=1))
    assert first.rows_read == 80 and "fan-02" not in first.scored_assets
    # The fan is installed: its 40 one-minute windows reach far back before the round's
    # shared read window, and every one of them is read, none twice.
    report = pipeline.run_once(fleet.emit(40))
    assert report.rows_read == 3 * 40 and report.commissioned == ["fan-02/de_radial"]
    assert report.rows_commissioning == 30 and report.rows_scored == 2 * 40 + 10
    assert pipeline.run_once(fleet.t + timedelta(seconds=2)).rows_read == 0


def test_new_assets_are_read_back_a_bounded_number_a_round_and_every_row_once(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("cloud.pipeline._pipeline.FRESH_ASSETS_PER_ROUND", 1)
    pipeline = ScoringPipeline(store, session_factory, settings)
    before = len(store.rows)
    fleet.emit(40)
    store.rows[before:] = [r for r in store.rows[before:] if r[1].asset_id == "pump-01"]
    pipeline.run_once(fleet.t + timedelta(seconds=1))
    # Two machines are installed at once, each with 40 windows of backlog: one is read
    # back this round, the other (not touched at all meanwhile) the next.
    second = pipeline.run_once(fleet.emit(40))
    assert second.rows_read == 40 + 40 and second.commissioned == ["fan-02/de_radial"]
    third = pipeline.run_once(fleet.t + timedelta(seconds=2))
    assert third.rows_read == 40 and third.commissioned == ["motor-03/de_radial"]
    assert pipeline.run_once(fleet.t + timedelta(seconds=3)).rows_read == 0
