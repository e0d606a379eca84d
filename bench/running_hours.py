"""What running-hours accounting adds to a scoring round.

A round of `--assets` assets × 2 points × `--rows` new rows each (capture times 10 s
apart, a tenth of the assets idle, one asset with a long silence). Measured:

- `accumulate`: the pure, vectorised accounting (cloud.domain.running_hours);
- `record_running_hours`: the same plus reading the counters and one UPDATE per asset,
  on a SQLite file (the round's hook);
- baselines in the same run: `Batch.build` of the same rows (what the round already pays
  to sort its rows), and a plain Python loop per record doing the same accounting.

    python bench/running_hours.py [--assets 5000] [--rows 10]

Prints figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from _common import best_of
from sqlalchemy import insert

from cloud.db import make_engine, make_session_factory, upgrade
from cloud.db.models import Asset, Gateway
from cloud.domain.hour_meter import record_running_hours
from cloud.domain.running_hours import accumulate, is_running
from cloud.pipeline._batch import Batch

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def rows(n_assets: int, n_rows: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(3)
    ids = np.array([f"asset-{i:05d}" for i in range(n_assets)])
    asset = np.repeat(np.arange(n_assets), 2 * n_rows)
    point = np.tile(np.repeat(np.array(["de", "nde"]), n_rows), n_assets)
    ts = T0.timestamp() + np.tile(np.arange(n_rows) * 10.0, 2 * n_assets)
    ts[asset == 0] += np.where(np.arange((asset == 0).sum()) % n_rows > n_rows // 2, 3600, 0)
    idle = rng.random(n_assets) < 0.1
    speed = np.where(idle[asset], 0.0, 1480.0)
    velocity = np.where(idle[asset], 0.05, 1.2) * np.exp(rng.normal(0, 0.05, len(asset)))
    order = rng.permutation(len(asset))  # the store does not promise an order
    return ids, asset[order], point[order], ts[order], speed[order], velocity[order]


def python_loop(asset: np.ndarray, ts: np.ndarray, running: np.ndarray, n: int) -> np.ndarray:
    """The reference: sort, then one Python step per record."""
    hours = np.zeros(n)
    last: dict[int, tuple[float, bool]] = {}
    instants: dict[tuple[int, float], bool] = {}
    for a, t, r in zip(asset.tolist(), ts.tolist(), running.tolist(), strict=True):
        instants[(a, t)] = instants.get((a, t), False) or r
    for (a, t), r in sorted(instants.items()):
        if a in last:
            before, ran = last[a]
            if r and ran and t - before <= 600.0:
                hours[a] += (t - before) / 3600.0
        last[a] = (t, r)
    return hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=10)
    args = parser.parse_args()
    ids, asset, point, ts, speed, velocity = rows(args.assets, args.rows)
    n = len(ts)
    idle_level = np.full(n, 0.35)
    nan = np.full(args.assets, np.nan)
    no = np.zeros(args.assets, dtype=bool)

    def pure() -> object:
        running = is_running(speed, velocity, idle_level)
        return accumulate(asset, ts, running, last_ts_s=nan, last_running=no,
                          rate_h_per_day=nan)

    out = pure()
    ref = python_loop(asset, ts, is_running(speed, velocity, idle_level), args.assets)
    assert np.allclose(out.hours_added, ref)  # type: ignore[attr-defined]
    t_pure = best_of(pure, 5)
    t_loop = best_of(lambda: python_loop(asset, ts, is_running(speed, velocity, idle_level),
                                         args.assets), 3)
    names = ["speed_rpm", "velocity_rms_mms"]
    values = np.column_stack([speed, velocity])
    t_batch = best_of(lambda: Batch.build(ids[asset], point, ts, values, names), 3)

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ironwatch.db'}"
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with factory() as s:
            s.execute(insert(Gateway), [{"id": "gw-1", "name": "gw", "status": {}}])
            s.execute(insert(Asset), [
                {"id": i, "gateway_id": "gw-1", "name": i, "kind": "pump", "location": "",
                 "customer_tier": "standard", "running_hours": 0.0, "created_at": T0,
                 "updated_at": T0}
                for i in ids.tolist()
            ])
            s.commit()
        shift = [0.0]

        def with_db() -> object:
            # Each call a new round: the rows move on past what was accounted.
            shift[0] += 10.0 * args.rows
            with factory() as s:
                report = record_running_hours(s, asset_ids=ids[asset], ts_s=ts + shift[0],
                                              speed_rpm=speed, velocity_rms_mms=velocity)
                s.commit()
            return report

        with_db()
        t_db = best_of(with_db, 3)
        engine.dispose()

    result = {
        "bench": "running_hours",
        "assets": args.assets,
        "rows": n,
        "accumulate_s": round(t_pure, 5),
        "accumulate_ns_per_row": round(t_pure / n * 1e9, 1),
        "with_sqlite_s": round(t_db, 4),
        "with_sqlite_us_per_asset": round(t_db / args.assets * 1e6, 1),
        "batch_build_s": round(t_batch, 4),
        "python_loop_s": round(t_loop, 4),
        "ratio_accumulate_to_batch_build": round(t_pure / t_batch, 3),
        "ratio_with_sqlite_to_batch_build": round(t_db / t_batch, 3),
        "ratio_python_loop_to_accumulate": round(t_loop / t_pure, 1),
        "python": platform.python_version(),
    }
    print(f"{n} rows of {args.assets} assets (2 points each):")
    print(f"  accumulate            {t_pure * 1e3:8.2f} ms  ({t_pure / n * 1e9:.0f} ns a row)")
    per_asset = t_db / args.assets * 1e6
    print(f"  + SQLite read/update  {t_db * 1e3:8.2f} ms  ({per_asset:.0f} µs an asset, "
          f"ratio {t_db / t_batch:.2f})")
    print(f"  Batch.build baseline  {t_batch * 1e3:8.2f} ms  (ratio {t_pure / t_batch:.3f})")
    print(f"  Python loop baseline  {t_loop * 1e3:8.2f} ms  ({t_loop / t_pure:.1f}× accumulate)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
