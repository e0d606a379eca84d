"""One escalation-ladder tick over a backlog of open work orders, next to the single-level
check it replaced.

N assets each have one open work order, created at staggered times over the last day, on
an SQLite file. A tick is `check_escalations` + commit, as the cloud's deadline checker
runs it every 15 s. Measured: a steady tick (every due level already raised: the common
case), and the first tick after a pause raising every level due since (without the
per-tick cap the service uses), as a cost per level raised. The baseline,
in the same run on a copy of the same database, is a one-level ladder at the deadline:
what escalation did before warnings and managers.

    python bench/escalation.py [--work-orders 5000] [--runs 3]

Prints figures, then one JSON line with the ratio ladder/baseline (time of a steady tick).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import best_of

from cloud.db import Asset, WorkOrder, make_engine, make_session_factory, upgrade
from cloud.db.engine import SessionFactory
from cloud.domain.escalation import check_escalations
from cloud.domain.policy import DEFAULT_POLICY, EscalationLevel, ServiceLevelPolicy

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DEADLINE_ONLY = ServiceLevelPolicy(
    escalation_levels=(EscalationLevel(name="supervisor", at_fraction=1.0),)
)


def build(path: Path, n: int) -> None:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        session.add_all(Asset(id=f"a-{i}", name=f"machine {i}") for i in range(n))
        session.flush()
        for i in range(n):
            created = NOW - timedelta(hours=24) + timedelta(seconds=86_400 * i / n)
            session.add(
                WorkOrder(
                    asset_id=f"a-{i}", failure_mode="imbalance", title="t", priority="P2",
                    state="open", created_at=created, updated_at=created,
                    respond_by=created + timedelta(hours=8),
                    resolve_by=created + timedelta(hours=72),
                )
            )
        session.commit()
    engine.dispose()


def tick(factory: SessionFactory, policy: ServiceLevelPolicy, at: datetime) -> int:
    with factory() as session:
        raised = check_escalations(session, at, policy=policy, max_raised=10**9)
        session.commit()
        return len(raised)


def measure(path: Path, policy: ServiceLevelPolicy, runs: int) -> tuple[float, int, float]:
    """(first tick s, levels it raised, best steady tick s)."""
    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    t0 = time.perf_counter()
    raised = tick(factory, policy, NOW)
    first = time.perf_counter() - t0
    steady = best_of(lambda: tick(factory, policy, NOW + timedelta(seconds=1)), runs)
    engine.dispose()
    return first, raised, steady


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-orders", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ironwatch-bench-esc-"))
    try:
        ladder_db, base_db = workdir / "ladder.db", workdir / "baseline.db"
        build(ladder_db, args.work_orders)
        shutil.copy(ladder_db, base_db)
        first, raised, steady = measure(ladder_db, DEFAULT_POLICY, args.runs)
        b_first, b_raised, b_steady = measure(base_db, DEADLINE_ONLY, args.runs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    n = args.work_orders
    print(f"{n} open work orders (P2: respond 8 h, resolve 72 h), created over the last day")
    print(f"ladder   : first tick {first * 1e3:8.1f} ms raising {raised:5d} levels "
          f"({first / raised * 1e3:.2f} ms each); steady tick {steady * 1e3:7.1f} ms")
    print(f"baseline : first tick {b_first * 1e3:8.1f} ms raising {b_raised:5d} levels "
          f"({b_first / b_raised * 1e3:.2f} ms each); steady tick {b_steady * 1e3:7.1f} ms "
          "(one level at the deadline)")
    print(json.dumps({
        "bench": "escalation_tick",
        "work_orders": n,
        "ladder_first_tick_ms": round(first * 1e3, 1),
        "ladder_levels_raised": raised,
        "ladder_ms_per_level": round(first / raised * 1e3, 2),
        "ladder_steady_tick_ms": round(steady * 1e3, 1),
        "baseline_first_tick_ms": round(b_first * 1e3, 1),
        "baseline_levels_raised": b_raised,
        "baseline_ms_per_level": round(b_first / b_raised * 1e3, 2),
        "baseline_steady_tick_ms": round(b_steady * 1e3, 1),
        "ratio_ladder_to_baseline_steady": round(steady / b_steady, 2),
    }))


if __name__ == "__main__":
    main()
