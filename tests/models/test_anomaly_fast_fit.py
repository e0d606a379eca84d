"""The vectorised FleetBaseline fit against the per-asset reference, and refit of a few assets."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from ironwatch_testing.reference_anomaly import ReferenceFleetBaseline
from models import anomaly
from models.anomaly import FleetBaseline

FITTED = ("coef_", "scale_", "precision_", "used_", "corr_", "threshold_", "consistency_")


def messy_fleet(
    seed: int, n_assets: int = 40, n_features: int = 9
) -> tuple[NDArray[np.float64], NDArray[np.str_], NDArray[np.float64]]:
    """Uneven assets (2 to 90 rows), shuffled rows, string ids, gaps, a quantised column,
    a column one asset never reports and one it holds constant."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 90, n_assets)
    counts[:3] = [2, 5, 31]  # too few to calibrate, the smallest calibrated, more than 30 folds
    k = np.repeat(np.arange(n_assets), counts)
    rng.shuffle(k)
    ids = np.array([f"gw{a % 4}/asset-{a}" for a in range(n_assets)])[k]
    speed = rng.uniform(20.0, 30.0, k.size)
    X = (
        rng.normal(0.0, 3.0, (n_assets, n_features))[k]
        + rng.uniform(0.2, 2.0, (n_assets, n_features))[k] * rng.standard_t(5, (k.size, n_features))
        + np.outer(speed, rng.normal(0.0, 0.1, n_features))
    )
    X[rng.random(X.shape) < 0.03] = np.nan
    X[:, 1] = np.round(X[:, 1], 1)
    X[k == 4, 2] = np.nan
    X[k == 5, 3] = 7.25
    return X, ids, speed


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_conditions", [0, 1, 2])
def test_vectorised_fit_matches_the_per_asset_reference(seed: int, n_conditions: int) -> None:
    X, ids, speed = messy_fleet(seed)
    rng = np.random.default_rng(seed + 50)
    cond = [None, speed, np.c_[speed, rng.normal(size=speed.size)]][n_conditions]
    fast = FleetBaseline().fit(X, asset_ids=ids, conditions=cond)
    ref = ReferenceFleetBaseline().fit(X, asset_ids=ids, conditions=cond)

    np.testing.assert_array_equal(fast.assets_, ref.assets_)
    for name in FITTED:
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=1e-6, atol=1e-7)
    assert fast.tail_shape_ == pytest.approx(ref.tail_shape_, rel=1e-9)
    assert fast.tail_ratio_ == pytest.approx(ref.tail_ratio_, rel=1e-9)

    # Fresh rows, known and unknown assets, some with gaps: the same scores.
    Xn = rng.normal(0.0, 3.0, (300, X.shape[1]))
    Xn[rng.random(Xn.shape) < 0.05] = np.nan
    idn = np.r_[rng.choice(ids, 290), np.full(10, "never-seen")]
    cn = None if cond is None else np.asarray(cond)[rng.integers(0, speed.size, 300)]
    np.testing.assert_allclose(
        fast.score_samples(Xn, asset_ids=idn, conditions=cn),
        ref.score_samples(Xn, asset_ids=idn, conditions=cn),
        rtol=1e-6,
    )


def test_refit_with_the_same_rows_reproduces_the_fit() -> None:
    X, ids, speed = messy_fleet(3)
    fitted = FleetBaseline().fit(X, asset_ids=ids, conditions=speed)
    again = FleetBaseline().fit(X, asset_ids=ids, conditions=speed)
    some = np.isin(ids, fitted.assets_[[0, 7, 11]])
    again.refit(X[some], asset_ids=ids[some], conditions=speed[some])
    for name in FITTED:
        np.testing.assert_allclose(getattr(again, name), getattr(fitted, name), rtol=1e-9)


def test_refit_changes_only_the_named_assets() -> None:
    X, ids, speed = messy_fleet(4)
    model = FleetBaseline().fit(X, asset_ids=ids, conditions=speed)
    before = {name: getattr(model, name).copy() for name in FITTED}
    target = model.assets_[9]
    k = int(np.searchsorted(model.assets_, target)) + 1
    rows = ids == target
    # The machine was serviced: its features moved and its spread doubled.
    moved = X[rows] * 2.0 + 20.0
    model.refit(moved, asset_ids=ids[rows], conditions=speed[rows])
    others = np.ones(len(model.assets_) + 1, dtype=bool)
    others[k] = False
    for name in FITTED:
        np.testing.assert_array_equal(getattr(model, name)[others], before[name][others])
    assert not np.allclose(model.coef_[k], before["coef_"][k])
    assert np.all(model.scale_[k][model.used_[k]] > before["scale_"][k][model.used_[k]])
    # Its new normal is normal, its old normal is not.
    assert np.mean(model.predict(moved, asset_ids=ids[rows], conditions=speed[rows]) == 1) > 0.9
    assert np.mean(model.predict(X[rows], asset_ids=ids[rows], conditions=speed[rows]) == -1) > 0.9


def test_refit_adds_a_new_asset_with_the_reference_baseline_and_threshold() -> None:
    X, ids, speed = messy_fleet(5)
    newcomer = ids[0]
    rest = ids != newcomer
    model = FleetBaseline().fit(X[rest], asset_ids=ids[rest], conditions=speed[rest])
    before = {name: getattr(model, name).copy() for name in FITTED}
    n_before = len(model.assets_)
    Xc, cc = X[~rest], speed[~rest]
    model.refit(Xc, asset_ids=ids[~rest], conditions=cc)

    assert len(model.assets_) == n_before + 1
    k = int(np.searchsorted(model.assets_, newcomer)) + 1
    assert model.assets_[k - 1] == newcomer
    keep = np.r_[0, np.flatnonzero(model.assets_ != newcomer) + 1]
    for name in FITTED:
        np.testing.assert_array_equal(getattr(model, name)[keep], before[name])

    # The reference computation of that asset alone, with the fleet's scale floor and ratio.
    ref = ReferenceFleetBaseline()
    design = np.c_[np.ones(cc.size), cc]
    pooled = (model.coef_[0], model.scale_[0], model.precision_[0], model.used_[0],
              model.corr_[0])
    own = ref._ref_fit_one(Xc, design, model.scale_[0])
    got = (model.coef_[k], model.scale_[k], model.precision_[k], model.corr_[k])
    for g, want in zip(got, (own[0], own[1], own[2], own[4]), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(model.used_[k], own[3])
    ref.assets_ = np.array([newcomer])
    d2 = ref._ref_out_of_sample(Xc, ids[~rest], design, [pooled, own])
    expected = float(np.median(d2[np.isfinite(d2)])) * model.tail_ratio_
    assert model.threshold_[k] == pytest.approx(expected, rel=1e-6)


def test_refit_refuses_a_different_shape() -> None:
    X, ids, speed = messy_fleet(6)
    model = FleetBaseline().fit(X, asset_ids=ids, conditions=speed)
    with pytest.raises(ValueError, match="condition"):
        model.refit(X[:40], asset_ids=ids[:40])
    with pytest.raises(ValueError, match="features"):
        model.refit(X[:40, :-1], asset_ids=ids[:40], conditions=speed[:40])


def test_one_long_commissioning_among_short_ones_matches_the_reference() -> None:
    # Blocks are sized by their largest asset: a long one must not be padded into a block
    # of short ones (memory), and every size still gives the reference's numbers.
    rng = np.random.default_rng(8)
    counts = np.r_[np.full(60, 6), 1500]
    k = np.repeat(np.arange(counts.size), counts)
    X = rng.normal(size=(k.size, 6)) + k[:, None] * 0.1
    fast = FleetBaseline().fit(X, asset_ids=k)
    ref = ReferenceFleetBaseline().fit(X, asset_ids=k)
    for name in FITTED:
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=1e-6, atol=1e-7)


def test_rows_gathered_per_model_score_as_the_per_asset_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, ids, speed = messy_fleet(9)
    model = FleetBaseline().fit(X, asset_ids=ids, conditions=speed)
    rng = np.random.default_rng(9)
    # One row per asset and round, as the pipeline scores; some rows with gaps.
    Xn = rng.normal(0.0, 3.0, (len(model.assets_), X.shape[1]))
    Xn[rng.random(Xn.shape) < 0.1] = np.nan
    sn = rng.uniform(20.0, 30.0, Xn.shape[0])
    gathered = model.score_samples(Xn, asset_ids=model.assets_, conditions=sn)
    monkeypatch.setattr(anomaly, "_SEGMENT_ROWS", 0)  # never gather: one step per asset
    looped = model.score_samples(Xn, asset_ids=model.assets_, conditions=sn)
    np.testing.assert_allclose(gathered, looped, rtol=1e-9)
