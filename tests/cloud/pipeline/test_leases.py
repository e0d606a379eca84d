"""Scoring workers sharing a fleet through PostgreSQL leases (real PostgreSQL, in process).

Two pipelines with their own lease holders stand for two worker processes; a wall clock
the test moves stands for time passing, so lease expiry takes no real waiting. The
process-level counterpart (real Mosquitto, SIGKILL) is `tests/cloud/test_scoring_workers.py`.
"""

from __future__ import annotations

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
