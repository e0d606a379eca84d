"""C-MAPSS FD001 remaining-useful-life benchmark.

Usage: python bench/cmapss_rul.py --train PATH [--test PATH --out FILE] [--seed 0]
Without --test: 5-fold GroupKFold by engine; each test-fold engine is cut at a seeded random
cycle and RUL is predicted at its last available cycle (the official test protocol). Reports
RMSE and the PHM08 score for FleetRulRegressor next to a RandomForest on the raw sensors of
the same last cycle, trained on the same folds. The RUL target is capped at 125 cycles; RMSE
is reported against the capped truth (the convention) and the raw truth.
With --test: train on all of --train, write ``unit,rul_pred`` for the last cycle of each unit.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import GroupKFold

from models.rul import FleetRulRegressor, phm08_score

MAX_RUL = 125.0
# Sensors that are constant (or nearly) on FD001 carry no information: s1 s5 s6 s10 s16 s18 s19.
USED_SENSORS = [2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21]


def load(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit, cycle, sensors) with rows sorted by unit then cycle."""
    raw = np.loadtxt(path)
    order = np.lexsort((raw[:, 1], raw[:, 0]))
    raw = raw[order]
    sensors = raw[:, [4 + s for s in USED_SENSORS]]
    return raw[:, 0].astype(int), raw[:, 1].astype(int), sensors


def rul_targets(units: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    last = {u: cycles[units == u].max() for u in np.unique(units)}
    return np.array([last[u] for u in units]) - cycles


def truncate(
    units: np.ndarray, rng: np.random.Generator, min_cycles: int = 31
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep each unit's first k rows (k random); returns row mask, last-row index, true RUL."""
    keep = np.zeros(units.size, bool)
    last_rows, true_rul = [], []
    for u in np.unique(units):
        rows = np.flatnonzero(units == u)
        k = int(rng.integers(min(min_cycles, rows.size), rows.size + 1))
        keep[rows[:k]] = True
        last_rows.append(rows[k - 1])
        true_rul.append(rows.size - k)
    return keep, np.array(last_rows), np.array(true_rul, dtype=float)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def cross_validate(path: Path, seed: int) -> None:
    units, cycles, X = load(path)
    y = rul_targets(units, cycles)
    rng = np.random.default_rng(seed)
    preds, base_preds, truths = [], [], []
    t0 = time.perf_counter()
    for fold, (tr, te) in enumerate(GroupKFold(n_splits=5).split(X, y, groups=units)):
        model = FleetRulRegressor(max_rul=MAX_RUL, random_state=seed)
        model.fit(X[tr], y[tr], unit_ids=units[tr])
        forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=5, random_state=seed)
        forest.fit(X[tr], np.minimum(y[tr], MAX_RUL))
        keep, last_rows, true_rul = truncate(units[te], rng)
        Xte, ute = X[te][keep], units[te][keep]
        # Position of each unit's last kept row inside the kept sub-array.
        last_kept = np.flatnonzero(np.r_[ute[1:] != ute[:-1], True])
        p = model.predict(Xte, unit_ids=ute)[last_kept]
        b = forest.predict(X[te][last_rows])
        preds.append(p)
        base_preds.append(b)
        truths.append(true_rul)
        capped = np.minimum(true_rul, MAX_RUL)
        print(
            f"fold {fold}: {len(true_rul)} engines  RMSE {rmse(p, capped):6.2f}  "
            f"baseline RF {rmse(b, capped):6.2f}"
        )
    p, b, truth = np.concatenate(preds), np.concatenate(base_preds), np.concatenate(truths)
    capped = np.minimum(truth, MAX_RUL)
    result = {
        "bench": "cmapss_rul",
        "engines": int(truth.size),
        "rmse": round(rmse(p, capped), 3),
        "phm08": round(phm08_score(capped, p), 1),
        "rmse_uncapped_truth": round(rmse(p, truth), 3),
        "baseline_rf_rmse": round(rmse(b, capped), 3),
        "baseline_rf_phm08": round(phm08_score(capped, b), 1),
        "baseline_rf_rmse_uncapped_truth": round(rmse(b, truth), 3),
        "seconds": round(time.perf_counter() - t0, 1),
        "seed": seed,
    }
    print(
        f"FleetRulRegressor: RMSE {result['rmse']} (uncapped truth "
        f"{result['rmse_uncapped_truth']}), PHM08 {result['phm08']}"
    )
    print(
        f"RandomForest raw sensors: RMSE {result['baseline_rf_rmse']} (uncapped truth "
        f"{result['baseline_rf_rmse_uncapped_truth']}), PHM08 {result['baseline_rf_phm08']}"
    )
    print(json.dumps(result))


def train_and_predict(train: Path, test: Path, out: Path, seed: int) -> None:
    units, cycles, X = load(train)
    model = FleetRulRegressor(max_rul=MAX_RUL, random_state=seed)
    model.fit(X, rul_targets(units, cycles), unit_ids=units)
    tu, _, tX = load(test)
    last = np.flatnonzero(np.r_[tu[1:] != tu[:-1], True])
    pred = model.predict(tX, unit_ids=tu)[last]
    lines = ["unit,rul_pred", *(f"{u},{p:.2f}" for u, p in zip(tu[last], pred, strict=True))]
    out.write_text("\n".join(lines) + "\n")
    print(
        json.dumps({"bench": "cmapss_rul", "mode": "predict", "units": len(last), "out": str(out)})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parents[2] / "shared/datasets/cmapss/train_FD001.txt"
    parser.add_argument("--train", type=Path, default=default)
    parser.add_argument("--test", type=Path)
    parser.add_argument("--out", type=Path, default=Path("cmapss_rul_pred.csv"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.test is None:
        cross_validate(args.train, args.seed)
    else:
        train_and_predict(args.train, args.test, args.out, args.seed)


if __name__ == "__main__":
    main()
