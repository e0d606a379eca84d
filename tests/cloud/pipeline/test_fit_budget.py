"""A fit budget per round: commissioning fits spread over rounds, oldest-ready first.

The budget here (1 ms) is below any real fit's cost, so every round fits exactly one
point: the smallest fleet shows what a 50,000-point fleet does at scale.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.pipeline import ScoringPipeline
from cloud.pipeline._fit_queue import FitQueue
from cloud.settings import CloudSettings

from .conftest import ASSETS, STEP, Fleet, MemoryStore

FAN, MOTOR, PUMP = "fan-02/de_radial", "motor-03/de_radial", "pump-01/de_radial"


@pytest.fixture
def one_fit_a_round(tmp_path: Path) -> CloudSettings:
    return CloudSettings(data_dir=tmp_path, commissioning_records=30, scoring_fit_budget_s=1e-3)


def _emit_only(fleet: Fleet, assets: set[str], windows: int) -> None:
    """`windows` windows of `assets` only (the others are switched off)."""
    before = len(fleet.store.rows)
    fleet.emit(windows)
    fleet.store.rows[before:] = [r for r in fleet.store.rows[before:] if r[1].asset_id in assets]


# -- the queue alone ---------------------------------------------------------------------------
def test_the_queue_gives_the_oldest_ready_points_first_as_many_as_the_budget_fits() -> None:
    queue = FitQueue(1.0, first_cost_s=0.25)
    for key, ready in (("d", 30.0), ("a", 20.0), ("c", 10.0), ("b", 20.0), ("e", 40.0)):
        queue.add(key, ready)
    queue.add("c", 50.0)  # ready again later: keeps the earlier time
    assert queue.capacity() == 4
    assert queue.take() == ["c", "a", "b", "d"]  # ready time, then key
    assert len(queue) == 1 and queue.oldest_ready_s() == 40.0
    queue.measured(points=10, seconds=10.0)  # 1 s a point measured: the estimate moves up
    assert queue.cost_per_point_s == pytest.approx(0.625)
    assert queue.capacity() == 1
    queue.measured(points=1, seconds=100.0)
    assert queue.capacity() == 1  # never below one point a round: the queue always drains
    assert queue.take() == ["e"] and queue.take() == [] and queue.oldest_ready_s() is None


def test_the_queue_refuses_a_budget_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="budget_s"):
        FitQueue(0.0)


# -- the pipeline ------------------------------------------------------------------------------
def test_a_round_fits_within_its_budget_scores_the_fitted_and_fits_the_rest_later(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    one_fit_a_round: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, one_fit_a_round)
    # All three points complete commissioning in one round; ties go by key.
    first = pipeline.run_once(fleet.emit(40))
    assert sorted(first.commissioned) == [FAN, MOTOR, PUMP]
    assert first.refitted == 1 and first.full_fit
    assert first.fit_waiting == 2 and first.fit_oldest_wait_s == 0.0
    assert first.scored_assets == {"fan-02"}
    assert first.rows_scored == 10 and first.rows_waiting_fit == 20
    # Next round: the motor is fitted, and the fan is scored in the same round.
    second = pipeline.run_once(fleet.emit(10))
    assert second.refitted == 1 and not second.full_fit
    assert second.scored_assets == {"fan-02", "motor-03"} and second.rows_scored == 20
    assert second.fit_waiting == 1 and second.fit_oldest_wait_s is not None
    assert second.fit_oldest_wait_s >= 60.0  # the pump has waited since the first round
    third = pipeline.run_once(fleet.emit(10))
    assert third.refitted == 1 and third.fit_waiting == 0 and third.fit_oldest_wait_s is None
    assert third.scored_assets == set(ASSETS) and third.rows_scored == 30
    fourth = pipeline.run_once(fleet.emit(10))
    assert fourth.refitted == 0 and fourth.rows_scored == 30 and fourth.rows_waiting_fit == 0


def test_points_are_fitted_in_the_order_they_became_ready_not_by_name(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    one_fit_a_round: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, one_fit_a_round)
    _emit_only(fleet, {"pump-01", "motor-03"}, 20)  # the fan was installed later
    first = pipeline.run_once(fleet.emit(20))
    assert sorted(first.commissioned) == [MOTOR, PUMP] and first.scored_assets == {"motor-03"}
    second = pipeline.run_once(fleet.emit(10))  # the fan's 30th window: ready now
    assert second.commissioned == [FAN]
    # The pump, ready a round earlier, goes before the fan (whose name comes first).
    assert second.scored_assets == {"motor-03", "pump-01"} and second.fit_waiting == 1
    third = pipeline.run_once(fleet.emit(10))
    assert third.scored_assets == set(ASSETS) and third.fit_waiting == 0


def test_points_waiting_for_a_fit_are_fitted_after_a_restart_from_the_database(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    one_fit_a_round: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, one_fit_a_round)
    first = pipeline.run_once(fleet.emit(40))
    assert first.fit_waiting == 2
    # A restart before the motor and the pump were fitted: their baselines are in the
    # database, so nothing is commissioned again; one point a round is fitted as before.
    restarted = ScoringPipeline(store, session_factory, one_fit_a_round)
    assert restarted.models.fitted and len(restarted.fit_queue) == 2
    rounds = [restarted.run_once(fleet.emit(10)) for _ in range(3)]
    assert [r.rows_commissioning for r in rounds] == [0, 0, 0]
    assert [r.fit_waiting for r in rounds] == [1, 0, 0]
    assert rounds[0].scored_assets == {"fan-02", "motor-03"}
    assert rounds[1].scored_assets == rounds[2].scored_assets == set(ASSETS)
    assert rounds[2].rows_scored == 30
    # The same baselines as before the restart (read from the database, not refilled).
    for key in (FAN, MOTOR, PUMP):
        assert (restarted.state.baseline.rows[key] == pipeline.state.baseline.rows[key]).all()


def test_a_large_budget_fits_a_whole_small_fleet_at_once(
    store: MemoryStore, fleet: Fleet, session_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    pipeline = ScoringPipeline(store, session_factory, settings)
    report = pipeline.run_once(fleet.emit(40))
    # Unset, the budget is a quarter of the fleet's record interval (one window a minute).
    assert pipeline.fit_queue.budget_s == pytest.approx(0.25 * STEP.total_seconds())
    assert report.refitted == 3 and report.full_fit and report.fit_waiting == 0
    assert report.scored_assets == set(ASSETS) and report.rows_scored == 30
