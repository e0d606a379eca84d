"""Fleet anomaly scoring: throughput and detection quality next to IsolationForest.

Usage: python bench/scoring.py [--assets 200 --windows 500 --rows 200000 --seed 0]
Synthetic feature rows (log-amplitudes with per-asset offsets, scales and a speed effect);
faulty rows shift a few features by 1.5-4 noise standard deviations, like an early fault.
Prints figures and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import best_of
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from models.anomaly import FleetBaseline
from models.features import FEATURE_NAMES

N_FEATURES = sum(1 for n in FEATURE_NAMES if not n.startswith("band_8k"))


def make_rows(
    rng: np.random.Generator,
    offsets: np.ndarray,
    scales: np.ndarray,
    gain: np.ndarray,
    n_rows: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Healthy rows: asset offset + speed effect + heavy-ish (t5) noise."""
    k = rng.integers(0, offsets.shape[0], n_rows)
    speed = rng.uniform(20.0, 30.0, n_rows)
    noise = rng.standard_t(5, (n_rows, offsets.shape[1]))
    X = offsets[k] + np.outer(speed - 25.0, gain) + scales[k] * noise
    return X, k, speed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=200)
    parser.add_argument("--windows", type=int, default=500)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    f = N_FEATURES
    offsets = rng.normal(0.0, 1.0, (args.assets, f))
    scales = rng.uniform(0.05, 0.3, (args.assets, f))
    gain = rng.normal(0.0, 0.05, f)
    k_fit = np.repeat(np.arange(args.assets), args.windows)
    speed_fit = rng.uniform(20.0, 30.0, k_fit.size)
    X_fit = (
        offsets[k_fit]
        + np.outer(speed_fit - 25.0, gain)
        + scales[k_fit] * rng.standard_t(5, (k_fit.size, f))
    )

    t0 = time.perf_counter()
    model = FleetBaseline(false_alarms_per_year=1.0, scoring_interval_s=600.0)
    model.fit(X_fit, asset_ids=k_fit, conditions=speed_fit)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    forest = IsolationForest(n_estimators=100, random_state=args.seed).fit(X_fit)
    forest_fit_s = time.perf_counter() - t0

    X, k, speed = make_rows(rng, offsets, scales, gain, args.rows)
    ours_s = best_of(lambda: model.score_samples(X, asset_ids=k, conditions=speed))
    forest_s = best_of(lambda: forest.score_samples(X), repeats=2)

    # Detection quality: half healthy, half with an early fault on 3 random features.
    n_eval = min(args.rows, 40_000)
    Xh, kh, sh = make_rows(rng, offsets, scales, gain, n_eval)
    Xf, kf, sf = make_rows(rng, offsets, scales, gain, n_eval)
    for i in range(n_eval):
        cols = rng.choice(f, 3, replace=False)
        Xf[i, cols] += rng.uniform(1.5, 4.0, 3) * scales[kf[i], cols]
    X_eval = np.vstack([Xh, Xf])
    k_eval = np.concatenate([kh, kf])
    s_eval = np.concatenate([sh, sf])
    y = np.concatenate([np.zeros(n_eval), np.ones(n_eval)])
    auc_ours = roc_auc_score(y, -model.score_samples(X_eval, asset_ids=k_eval, conditions=s_eval))
    auc_forest = roc_auc_score(y, -forest.score_samples(X_eval))
    false_alarm_rate = float(np.mean(model.predict(X, asset_ids=k, conditions=speed) == -1))
    detected = float(np.mean(model.predict(Xf, asset_ids=kf, conditions=sf) == -1))
    # A developed fault: the same features shifted by 8 noise standard deviations.
    Xd, kd, sd = make_rows(rng, offsets, scales, gain, n_eval)
    cols = rng.integers(0, f, (n_eval, 3))
    np.put_along_axis(
        Xd, cols, np.take_along_axis(Xd, cols, 1) + 8.0 * scales[kd[:, None], cols], 1
    )
    developed = float(np.mean(model.predict(Xd, asset_ids=kd, conditions=sd) == -1))

    rows_s, forest_rows_s = args.rows / ours_s, args.rows / forest_s
    print(f"fleet: {args.assets} assets x {args.windows} commissioning windows, {f} features")
    print(f"fit: FleetBaseline {fit_s:.2f} s, IsolationForest {forest_fit_s:.2f} s")
    print(
        f"score_samples: FleetBaseline {rows_s:,.0f} rows/s, IsolationForest {forest_rows_s:,.0f}"
    )
    print(f"speed-up {rows_s / forest_rows_s:.1f}x")
    print(
        f"AUC healthy vs early fault: FleetBaseline {auc_ours:.4f}, "
        f"IsolationForest {auc_forest:.4f}"
    )
    print(
        f"false-alarm rate per window {false_alarm_rate:.2e} (budget {model.p_alarm_:.2e}); "
        f"alarmed at the 1/asset-year threshold: early faults {detected:.3f}, "
        f"developed (8 sd) faults {developed:.3f}"
    )
    print(
        json.dumps(
            {
                "bench": "scoring",
                "rows": args.rows,
                "features": f,
                "assets": args.assets,
                "rows_per_s": round(rows_s),
                "iforest_rows_per_s": round(forest_rows_s),
                "speedup": round(rows_s / forest_rows_s, 2),
                "auc": round(float(auc_ours), 4),
                "iforest_auc": round(float(auc_forest), 4),
                "false_alarm_rate": false_alarm_rate,
                "false_alarm_budget": model.p_alarm_,
                "early_detected_at_threshold": detected,
                "developed_detected_at_threshold": developed,
            }
        )
    )


if __name__ == "__main__":
    main()
