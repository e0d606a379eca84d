"""Scoring rounds for large fleets: commissioning, steady rounds, state written, memory.

Usage: python bench/scoring_scale.py [--assets 1000 10000 50000] [--interval 10]
       [--baseline-src /path/to/older/checkout --baseline-max 10000] [--postgres-url URL]

Synthetic fleets of one measurement point per asset, 20 features per record (18 vibration
features, temperature and speed), one record per asset every `--interval` seconds of
capture time. Each fleet size runs in its own process (so its RSS is its own):
  - commissioning: the rounds until every point has its 30-record baseline and the
    detector is fitted, summed (the time a new fleet takes to start being scored);
  - steady: rounds of one new record per asset, with every point's histories filled
    (2 000 health-indicator values and the RUL lead-in of every trended feature), as
    after a long run;
  - state written per round (rows and bytes to the database; for the file-based
    approach, the size of the state.json + baseline it rewrote), and peak RSS.
The telemetry store is an in-memory stand-in that returns a round's rows as an indexed
range query would, so the figures are the pipeline's own.

With --baseline-src the same scenario runs against another checkout (the file-state
pipeline before this change) for the sizes up to --baseline-max, and ratios are printed.
It then prints the largest fleet one node keeps up with at T = 10 s and T = 1 s (every
steady round shorter than T), measured and extrapolated from the per-asset round cost.
Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

N_HISTORY = 2000
COMMISSIONING = 30
LEAD_IN_S = 300.0
T0_S = 1_800_000_000.0


class RoundStore:
    """The read side of a telemetry store holding the last few rounds' rows, columnar."""

    def __init__(self, n_assets: int, seed: int) -> None:
        from models.features import FEATURE_NAMES

        self.names = (*FEATURE_NAMES, "temperature_c", "speed_rpm")
        self.rng = np.random.default_rng(seed)
        self.asset_ids = np.array([f"a{i:06d}" for i in range(n_assets)])
        self.level = np.exp(self.rng.normal(0.0, 0.5, (n_assets, len(self.names))))
        self.level[:, -1] = 1480.0
        self.frames: list[Any] = []
        self.seq = 0

    def emit(self, ts_s: float) -> None:
        """One record per asset at capture time `ts_s`; older rounds are dropped after two."""
        from cloud.telemetry import FeatureFrame

        n = len(self.asset_ids)
        noise = np.exp(self.rng.normal(0.0, 0.05, (n, len(self.names))))
        values = self.level * noise
        values[:, -1] = 1480.0 + self.rng.normal(0.0, 2.0, n)
        frame = FeatureFrame(
            gateway_ids=np.full(n, "gw-1"),
            seqs=np.arange(self.seq, self.seq + n, dtype=np.int64),
            asset_ids=self.asset_ids,
            points=np.full(n, "de_radial"),
            ts_ns=np.full(n, int(ts_s * 1e9), dtype=np.int64),
            window_s=np.ones(n),
            stale=np.zeros(n, dtype=bool),
            values=values,
            feature_names=tuple(self.names),
        )
        self.seq += n
        self.frames = [*self.frames[-1:], frame]

    def query(self, *, asset_ids: Any = None, point: Any = None, start: Any = None,
              end: Any = None, features: Any = None, limit: Any = None) -> Any:
        from cloud.telemetry import FeatureFrame

        out = []
        lo = None if start is None else int(start.timestamp() * 1e9)
        hi = None if end is None else int(end.timestamp() * 1e9)
        for frame in self.frames:
            keep = np.ones(len(frame), dtype=bool)
            if lo is not None:
                keep &= frame.ts_ns >= lo
            if hi is not None:
                keep &= frame.ts_ns < hi
            if asset_ids is not None:
                keep &= np.isin(frame.asset_ids, list(asset_ids))
            if keep.any():
                out.append(frame.take(keep))
        if not out:
            return FeatureFrame.empty(self.names)
        if len(out) == 1:
            return out[0]
        return FeatureFrame(
            **{f: np.concatenate([getattr(o, f) for o in out])
               for f in ("gateway_ids", "seqs", "asset_ids", "points", "ts_ns", "window_s",
                         "stale")},
            values=np.vstack([o.values for o in out]), feature_names=tuple(self.names),
        )

    def latest_snapshot(self, asset_id: str, point: str | None = None) -> None:
        return None


def _fill_histories(pipeline: Any, interval_s: float, now_s: float) -> None:
    """Every point's histories as after a long run: 2 000 HI values, the RUL lead-in."""
    from cloud.pipeline._model_suite import is_trended

    times = now_s - interval_s * np.arange(N_HISTORY)[::-1]
    lead = int(LEAD_IN_S // interval_s) + 1
    names = [n for n in pipeline.state.baseline.feature_names if is_trended(n)]
    rng = np.random.default_rng(1)
    # Each version's own form: lists of floats for the file-state version, arrays here.
    arrays = hasattr(pipeline, "state_store")
    for ks in pipeline.state.keys.values():
        hi = rng.normal(1.0, 0.05, N_HISTORY)
        ks.hi_t_s = times.copy() if arrays else times.tolist()
        ks.hi = hi if arrays else hi.tolist()
        ks.trend = {n: rng.normal(1.0, 0.05, lead).tolist() for n in names}


def _state_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*") if p.is_file())


def run_one(n_assets: int, interval_s: float, rounds: int, db_url: str | None) -> dict[str, Any]:
    """One fleet size in this process (whichever checkout is on the path)."""
    from cloud.db import Base, make_engine, make_session_factory
    from cloud.pipeline import ScoringPipeline
    from cloud.settings import CloudSettings

    tmp = Path(tempfile.mkdtemp(prefix="scoring-scale-"))
    url = db_url or f"sqlite:///{tmp / 'ironwatch.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    settings = CloudSettings(data_dir=tmp, database_url=url, scoring_interval_s=interval_s,
                             commissioning_records=COMMISSIONING)
    store = RoundStore(n_assets, seed=n_assets)
    pipeline = ScoringPipeline(store, factory, settings)
    file_state = not hasattr(pipeline, "state_store")
    t = T0_S
    commissioning_s = 0.0
    commissioning_rounds = 0
    while True:
        t += interval_s
        store.emit(t)
        t0 = time.perf_counter()
        report = pipeline.run_once(datetime.fromtimestamp(t + 1.0, UTC))
        commissioning_s += time.perf_counter() - t0
        commissioning_rounds += 1
        if report.commissioned or commissioning_rounds > COMMISSIONING + 2:
            break
    _fill_histories(pipeline, interval_s, t)
    durations, written, rows_written = [], [], []
    for _ in range(rounds):
        t += interval_s
        store.emit(t)
        t0 = time.perf_counter()
        report = pipeline.run_once(datetime.fromtimestamp(t + 1.0, UTC))
        durations.append(time.perf_counter() - t0)
        if file_state:
            written.append(_state_bytes(tmp / "pipeline"))
            rows_written.append(0)
        else:
            written.append(report.state_bytes_written)
            rows_written.append(report.state_rows_written)
        assert report.rows_scored == n_assets, (report.rows_scored, n_assets)
    engine.dispose()
    return {
        "assets": n_assets,
        "impl": "file" if file_state else "db",
        "commissioning_s": commissioning_s,
        "commissioning_rounds": commissioning_rounds,
        "round_s_median": float(np.median(durations)),
        "round_s_max": float(np.max(durations)),
        "state_bytes_per_round": int(np.median(written)),
        "state_rows_per_round": int(np.median(rows_written)),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def _spawn(src: Path, n: int, args: argparse.Namespace) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--one", str(n), "--interval", str(args.interval),
           "--rounds", str(args.rounds)]
    if args.postgres_url:
        cmd += ["--postgres-url", args.postgres_url]
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                             timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(f"  {src.name} {n}: no result within {args.timeout:.0f} s", flush=True)
        return None
    except subprocess.CalledProcessError as err:
        print(f"  {src.name} {n}: failed\n{err.stderr[-2000:]}", flush=True)
        return None
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, nargs="+", default=[1000, 10_000, 50_000])
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--baseline-max", type=int, default=10_000)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.interval, args.rounds, args.postgres_url)))
        return

    here = Path(__file__).resolve().parent.parent
    results: list[dict[str, Any]] = []
    print(f"{'impl':5} {'assets':>7} {'commission s':>12} {'round s':>8} {'max s':>7} "
          f"{'state B/round':>14} {'rows/round':>10} {'RSS MB':>7}  vs file-state")
    for n in args.assets:
        mine = _spawn(here, n, args)
        old = (_spawn(args.baseline_src, n, args)
               if args.baseline_src is not None and n <= args.baseline_max else None)
        for r in (old, mine):
            if r is None:
                continue
            ratio = ""
            if r is mine and old is not None:
                written = max(r["state_bytes_per_round"], 1)
                ratio = (f"round {old['round_s_median'] / r['round_s_median']:.1f}x, "
                         f"bytes {old['state_bytes_per_round'] / written:.0f}x, "
                         f"commissioning {old['commissioning_s'] / r['commissioning_s']:.1f}x, "
                         f"RSS {old['rss_mb'] / r['rss_mb']:.1f}x")
            print(f"{r['impl']:5} {r['assets']:>7} {r['commissioning_s']:>12.1f} "
                  f"{r['round_s_median']:>8.3f} {r['round_s_max']:>7.3f} "
                  f"{r['state_bytes_per_round']:>14,} {r['state_rows_per_round']:>10,} "
                  f"{r['rss_mb']:>7.0f}  {ratio}", flush=True)
            results.append(r)
    mine_rows = [r for r in results if r["impl"] == "db"]
    limits: dict[str, Any] = {}
    for period in (10.0, 1.0):
        kept = [r["assets"] for r in mine_rows if r["round_s_max"] < period]
        biggest = max(mine_rows, key=lambda r: r["assets"]) if mine_rows else None
        per_asset = biggest["round_s_median"] / biggest["assets"] if biggest else float("nan")
        limits[f"T={period:g}s"] = {"measured_assets": max(kept, default=0),
                                     "extrapolated_assets": int(period / per_asset)}
        print(f"T = {period:g} s: keeps up with {max(kept, default=0):,} assets measured; "
              f"about {int(period / per_asset):,} at {per_asset * 1e6:.1f} us per asset-round")
    print(json.dumps({"results": results, "limits": limits}))


if __name__ == "__main__":
    main()
