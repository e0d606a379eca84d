"""Scoring workers sharing a fleet through PostgreSQL leases (real PostgreSQL, in process).

Two pipelines with their own lease holders stand for two worker processes; a wall clock
the test moves stands for time passing, so lease expiry takes no real waiting. The
process-level counterpart (real Mosquitto, SIGKILL) is `tests/cloud/test_scoring_workers.py`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import (
    Alert,
    ScoringAsset,
    ScoringPoint,
    WorkOrder,
)
from cloud.pipeline import ScoringPipeline
from cloud.pipeline._leases import Leases
from cloud.settings import CloudSettings

from .conftest import ASSETS, Fleet, MemoryStore, WallClock

pytestmark = pytest.mark.integration

LEASE_S = 10.0


def _worker(
    name: str, store: MemoryStore, factory: sessionmaker[Session], settings: CloudSettings,
    wall: WallClock,
) -> ScoringPipeline:
    leases = Leases(factory, lease_s=LEASE_S, holder=name, wall_clock=wall)
    return ScoringPipeline(store, factory, settings, leases=leases)


def _count(factory: sessionmaker[Session], model: type[Alert] | type[WorkOrder]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_two_workers_share_the_fleet_and_score_every_row_once(
    store: MemoryStore, fleet: Fleet, pg_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    wall = WallClock()
    one = _worker("w1", store, pg_factory, settings, wall)
    two = _worker("w2", store, pg_factory, settings, wall)
    assert not one.leases.all_mine
    scored_rows = 0
    held: list[tuple[set[str], set[str]]] = []
    now = fleet.emit(40)
    for _ in range(6):
        first, second = one.run_once(now), two.run_once(now)
        # No asset is scored by both workers in a round.
        assert not first.scored_assets & second.scored_assets
        scored_rows += first.rows_scored + second.rows_scored
        held.append((set(one.leases.mine), set(two.leases.mine)))
        wall.t += 2.0
        now = fleet.emit(10)
    # Balanced after a round: two assets and one, disjoint, the whole fleet.
    mine_one, mine_two = held[-1]
    assert not mine_one & mine_two and mine_one | mine_two == set(ASSETS)
    assert sorted((len(mine_one), len(mine_two))) == [1, 2]
    # Every row after commissioning was scored exactly once, across the handover.
    assert scored_rows == 3 * (40 - 30) + 5 * 3 * 10
    with pg_factory() as session:
        holders = {a: h for a, h in session.execute(
            select(ScoringAsset.asset_id, ScoringAsset.holder))}
    assert holders == {a: ("w1" if a in mine_one else "w2") for a in ASSETS}


def test_a_dead_workers_assets_are_taken_over_after_its_lease_without_duplicate_alerts(
    store: MemoryStore, fleet: Fleet, pg_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    wall = WallClock()
    workers = {"w1": _worker("w1", store, pg_factory, settings, wall),
               "w2": _worker("w2", store, pg_factory, settings, wall)}
    now = fleet.emit(40)
    for _ in range(2):
        for w in workers.values():
            w.run_once(now)
        wall.t += 2.0
        now = fleet.emit(10)
    for _ in range(4):
        for w in workers.values():
            w.run_once(now)
        wall.t += 2.0
        now = fleet.emit(10, degrade={"pump-01": 0.08})
    assert _count(pg_factory, Alert) == 1 and _count(pg_factory, WorkOrder) == 1
    holder = next(n for n, w in workers.items() if "pump-01" in w.leases.mine)
    dead = workers.pop(holder)
    [survivor] = workers.values()
    # Within the lease the dead worker's assets stay its own ...
    wall.t += LEASE_S / 2
    report = survivor.run_once(now)
    assert "pump-01" not in report.scored_assets
    # ... after it, the survivor takes them over and resumes from their saved state.
    wall.t += LEASE_S
    now = fleet.emit(10, degrade={"pump-01": 0.08})
    report = survivor.run_once(now)
    assert survivor.leases.mine == set(ASSETS) and report.assets_gained >= 1
    assert "pump-01" in report.scored_assets
    assert report.rows_commissioning == 0 and not report.commissioned
    assert survivor.state.keys["pump-01/de_radial"].raised
    assert report.alerts_upserted == [1]  # the open alert, updated
    # The dead worker was only stalled: its next round writes nothing for lost assets.
    zombie = dead.run_once(fleet.emit(10, degrade={"pump-01": 0.08}))
    assert zombie.assets_lost >= 1 and not zombie.alerts_upserted
    assert not dead.leases.mine and not dead.state.keys
    survivor.run_once(fleet.emit(10, degrade={"pump-01": 0.08}))
    assert _count(pg_factory, Alert) == 1 and _count(pg_factory, WorkOrder) == 1


def test_a_worker_started_afresh_resumes_from_the_database(
    store: MemoryStore, fleet: Fleet, pg_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    wall = WallClock()
    first = _worker("w1", store, pg_factory, settings, wall)
    first.run_once(fleet.emit(40))
    first.run_once(fleet.emit(10))
    first.stop()  # a clean stop gives the leases back at once
    assert not any(settings.data_dir.rglob("*"))  # no local state at all
    fresh = _worker("w3", store, pg_factory, settings, wall)
    report = fresh.run_once(fleet.emit(5))
    assert report.assets_gained == 3
    assert report.rows_read == 15 and report.rows_commissioning == 0
    assert report.rows_scored == 15 and fresh.models.fitted


def test_a_round_that_outlives_its_lease_writes_nothing_and_reads_again(
    store: MemoryStore, fleet: Fleet, pg_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    wall = WallClock()
    worker = _worker("w1", store, pg_factory, settings, wall)
    worker.run_once(fleet.emit(40))
    with pg_factory() as session:
        saved = {k: c for k, c in session.execute(
            select(ScoringPoint.key, ScoringPoint.cursor_s))}
    read_new = worker._read_new

    def stalled(*args: Any, **kw: Any) -> Any:
        wall.t += LEASE_S + 1.0  # the round stalls past its lease after reading
        return read_new(*args, **kw)

    worker._read_new = stalled  # type: ignore[method-assign]
    report = worker.run_once(fleet.emit(10))
    assert report.rows_read == 30 and report.assets_lost == 3
    assert not report.scored_assets and not worker.state.keys
    with pg_factory() as session:
        assert {k: c for k, c in session.execute(
            select(ScoringPoint.key, ScoringPoint.cursor_s))} == saved
    worker._read_new = read_new  # type: ignore[method-assign]
    # Nobody took the assets: the next round takes them again, from the saved state.
    again = worker.run_once(fleet.emit(10))
    assert again.assets_gained == 3 and again.rows_read == 60 and again.rows_scored == 60


def test_a_round_longer_than_its_lease_keeps_it_alive_and_writes_its_work(
    store: MemoryStore, fleet: Fleet, pg_factory: sessionmaker[Session],
    settings: CloudSettings,
) -> None:
    wall = WallClock()
    worker = _worker("w1", store, pg_factory, settings, wall)
    other = _worker("w2", store, pg_factory, settings, wall)
    read_new, fit_ready = worker._read_new, worker._fit_ready

    def slow_read(*args: Any, **kw: Any) -> Any:
        wall.t += 0.75 * LEASE_S  # a commissioning burst to read
        return read_new(*args, **kw)

    def slow_fit(*args: Any, **kw: Any) -> Any:
        wall.t += 0.75 * LEASE_S  # and to fit
        return fit_ready(*args, **kw)

    worker._read_new = slow_read  # type: ignore[method-assign]
    worker._fit_ready = slow_fit  # type: ignore[method-assign]
    report = worker.run_once(fleet.emit(40))
    # One and a half leases long, but the lease was pushed on between the round's parts:
    # nothing was lost and the commissioning is in the database.
    assert report.assets_lost == 0 and report.scored_assets == set(ASSETS)
    with pg_factory() as session:
        commissioned = session.scalars(
            select(ScoringPoint.key).where(ScoringPoint.commissioned_at_s.is_not(None))).all()
    assert len(commissioned) == len(ASSETS)
    # The other worker saw it alive all along: it took none of its assets.
    other.run_once(fleet.emit(1))
    assert not other.leases.mine


def test_a_takeover_fits_the_assets_taken_within_the_fit_budget(
    store: MemoryStore, fleet: Fleet, pg_factory: sessionmaker[Session], tmp_path: Any,
) -> None:
    one_a_round = CloudSettings(data_dir=tmp_path, commissioning_records=30,
                                scoring_fit_budget_s=1e-3)
    wall = WallClock()
    first = _worker("w1", store, pg_factory, one_a_round, wall)
    reports = [first.run_once(fleet.emit(40 if i == 0 else 10)) for i in range(3)]
    assert [r.fit_waiting for r in reports] == [2, 1, 0]
    first.stop()
    second = _worker("w2", store, pg_factory, one_a_round, wall)
    taken = [second.run_once(fleet.emit(10)) for _ in range(3)]
    assert taken[0].assets_gained == 3
    # One point fitted a round, from the saved baselines: nothing commissions again, and
    # the points fitted are scored while the others wait.
    assert [r.rows_commissioning for r in taken] == [0, 0, 0]
    assert [len(r.scored_assets) for r in taken] == [1, 2, 3]
    assert [r.fit_waiting for r in taken] == [2, 1, 0]


def test_a_new_worker_reads_its_assets_back_a_bounded_share_a_round(
    store: MemoryStore, fleet: Fleet, pg_factory: sessionmaker[Session],
    settings: CloudSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("cloud.pipeline._pipeline.FRESH_ASSETS_PER_ROUND", 1)
    worker = _worker("w1", store, pg_factory, settings, WallClock())
    # Forty windows each, all older than the round's shared read window.
    later = fleet.emit(40) + timedelta(minutes=10)
    rounds = [worker.run_once(later + timedelta(seconds=i)) for i in range(4)]
    # One asset read back (to its first row) a round, none read twice.
    assert [r.rows_read for r in rounds] == [40, 40, 40, 0]
    assert [r.commissioned for r in rounds[:3]] == [
        ["fan-02/de_radial"], ["motor-03/de_radial"], ["pump-01/de_radial"]]
