"""Fleet baseline fit and refit time: vectorised fit against the per-asset reference.

Usage: python bench/fleet_fit.py [--assets 1000,10000,50000 --rows 30 --old-max 1000]
Synthetic commissioning rows (17 features, a speed condition, heavy-tailed noise). For each
fleet size: ``FleetBaseline.fit`` (new), ``refit`` of 1 % of the assets, a scoring round
(one row per asset, rows gathered per model against the per-asset loop), and the working
memory of the fit (tracemalloc peak). The reference (the per-asset loop it replaced,
``ironwatch_testing.reference_anomaly``) runs in full up to ``--old-max`` assets; above, its
time is estimated from parts measured in the same run: its per-asset fit cost at
``--old-max`` assets plus its per-asset ``ids == a`` mask, timed on the full-size fleet.
Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from collections.abc import Callable
from functools import partial

import numpy as np

from ironwatch_testing.reference_anomaly import ReferenceFleetBaseline
from models import anomaly
from models.anomaly import FleetBaseline

N_FEATURES = 17


def make_fleet(
    n_assets: int, rows: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-asset offsets and scales, a speed effect, t5 noise; rows grouped by asset."""
    rng = np.random.default_rng(seed)
    k = np.repeat(np.arange(n_assets), rows)
    speed = rng.uniform(20.0, 30.0, k.size)
    X = (
        rng.normal(0.0, 1.0, (n_assets, N_FEATURES))[k]
        + np.outer(speed - 25.0, rng.normal(0.0, 0.05, N_FEATURES))
        + rng.uniform(0.05, 0.3, (n_assets, N_FEATURES))[k]
        * rng.standard_t(5, (k.size, N_FEATURES))
    )
    ids = np.array([f"site{a % 50}/asset-{a}" for a in range(n_assets)])[k]
    return X, ids, speed


def timed(fn: Callable[[], object]) -> float:
    """Wall time (s) of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def peak_mb(fn: Callable[[], object]) -> float:
    """Peak memory (MB) allocated during one call (tracemalloc; numpy reports to it).

    A separate call from the timed one: tracing slows the many small allocations of the
    reference loop far more than the batched fit, which would flatter the ratio.
    """
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def mask_cost_per_asset(ids: np.ndarray, sample: int = 200) -> float:
    """The reference's ``ids == a`` (twice per asset), timed on ``sample`` assets."""
    assets = np.unique(ids)[:sample]
    t0 = time.perf_counter()
    for a in assets:
        _ = ids == a
        _ = ids == a
    return (time.perf_counter() - t0) / assets.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", default="1000,10000,50000")
    parser.add_argument("--rows", type=int, default=30, help="commissioning rows per asset")
    parser.add_argument("--old-max", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.assets.split(",")]

    # Warm both up (imports, scipy's first calls) so the first size is not charged for it.
    Xw, idw, sw = make_fleet(20, args.rows, seed=1)
    FleetBaseline().fit(Xw, asset_ids=idw, conditions=sw)
    ReferenceFleetBaseline().fit(Xw, asset_ids=idw, conditions=sw)
    results = []
    old_per_asset: float | None = None
    for n_assets in sizes:
        X, ids, speed = make_fleet(n_assets, args.rows)
        model = FleetBaseline()
        new_s = timed(partial(model.fit, X, asset_ids=ids, conditions=speed))
        thresholds = model.threshold_.copy()
        new_mb = peak_mb(partial(FleetBaseline().fit, X, asset_ids=ids, conditions=speed))
        # Refit 1 % of the fleet (at least one asset): serviced machines, new commissionings.
        some = np.isin(ids, model.assets_[::100])
        n_refit = int(np.unique(ids[some]).size)
        refit_s = timed(partial(model.refit, X[some], asset_ids=ids[some], conditions=speed[some]))
        masks = mask_cost_per_asset(ids)
        # A scoring round: one fresh row per asset. Gathered per row (now) against one
        # Python step per asset (before), same model, same run.
        first = np.r_[0, np.flatnonzero(ids[1:] != ids[:-1]) + 1]
        score_round = partial(
            model.score_samples, X[first], asset_ids=ids[first], conditions=speed[first]
        )
        round_s = min(timed(score_round) for _ in range(3))
        segment_rows, anomaly._SEGMENT_ROWS = anomaly._SEGMENT_ROWS, 0
        try:
            round_loop_s = min(timed(score_round) for _ in range(3))
        finally:
            anomaly._SEGMENT_ROWS = segment_rows
        if n_assets <= args.old_max:
            ref = ReferenceFleetBaseline()
            old_s = timed(partial(ref.fit, X, asset_ids=ids, conditions=speed))
            # Same run, same answers: the speed-up is not bought with different thresholds.
            np.testing.assert_allclose(thresholds, ref.threshold_, rtol=1e-6)
            old_per_asset = old_s / n_assets - masks
            old_kind = "measured"
        elif old_per_asset is not None:
            old_s = (old_per_asset + masks) * n_assets
            old_kind = "estimated"
        else:
            old_s, old_kind = float("nan"), "not run"
        row = {
            "assets": n_assets,
            "rows_per_asset": args.rows,
            "fit_s": round(new_s, 2),
            "fit_ms_per_asset": round(1000 * new_s / n_assets, 3),
            "fit_peak_mb": round(new_mb, 1),
            "refit_assets": n_refit,
            "refit_s": round(refit_s, 3),
            "round_score_s": round(round_s, 4),
            "round_score_per_asset_loop_s": round(round_loop_s, 4),
            "old_fit_s": round(old_s, 1),
            "old_fit": old_kind,
            "old_mask_share": round(masks * n_assets / old_s, 3) if old_s == old_s else None,
            "speedup": round(old_s / new_s, 1) if old_s == old_s else None,
        }
        results.append(row)
        print(
            f"{n_assets:>6} assets x {args.rows} rows: fit {new_s:7.2f} s "
            f"({row['fit_ms_per_asset']} ms/asset, peak {new_mb:.0f} MB), "
            f"refit {n_refit} assets {refit_s:.3f} s, scoring round {1000 * round_s:.1f} ms "
            f"(per-asset loop {1000 * round_loop_s:.1f} ms) | "
            f"reference {old_s:8.1f} s ({old_kind}, masks {row['old_mask_share']}) "
            f"-> {row['speedup']}x",
            flush=True,
        )
    print(json.dumps({"bench": "fleet_fit", "features": N_FEATURES, "results": results}))


if __name__ == "__main__":
    main()
