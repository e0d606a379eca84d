"""RUL estimators: Bayesian exponential degradation and the fleet regressor."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from models.rul import (
    ExponentialDegradation,
    FleetRulRegressor,
    choose_health_indicator,
    phm08_score,
    window_features,
)


def degradation(t: np.ndarray, seed: int = 0) -> np.ndarray:
    """HI = 1 + exp(-3 + 0.05 t) with 5 % log-normal noise: reaches 7.1 at t ≈ 96.2."""
    rng = np.random.default_rng(seed)
    return 1.0 + np.exp(-3.0 + 0.05 * t + rng.normal(0.0, 0.05, t.size))


TRUE_FAILURE = (np.log(7.1 - 1.0) + 3.0) / 0.05


def test_exponential_model_brackets_the_true_rul() -> None:
    t = np.arange(0.0, 70.0)
    model = ExponentialDegradation(threshold=7.1, phi=1.0).fit(t, degradation(t))
    est = model.predict_rul()
    true_rul = TRUE_FAILURE - 69.0
    assert est.lower < true_rul < est.upper
    assert est.median == pytest.approx(true_rul, rel=0.15)
    assert est.lower <= est.median <= est.upper
    assert est.probability_failed < 0.05


def test_more_data_narrows_the_interval_and_updates_agree_with_batch() -> None:
    t = np.arange(0.0, 80.0)
    hi = degradation(t, seed=1)
    short = ExponentialDegradation(threshold=7.1, phi=1.0, noise_sd=0.05).fit(t[:40], hi[:40])
    width_short = short.predict_rul(79.0).upper - short.predict_rul(79.0).lower
    short.update(t[40:], hi[40:])
    batch = ExponentialDegradation(threshold=7.1, phi=1.0, noise_sd=0.05).fit(t, hi)
    # Equal up to the data-derived prior level (first readings differ): same posterior.
    np.testing.assert_allclose(short.mean_, batch.mean_, rtol=1e-4)
    est = short.predict_rul()
    assert est.upper - est.lower < width_short


@pytest.mark.parametrize("phi", [None, 2.0, 0.0])
def test_flat_health_indicator_gives_long_or_infinite_rul(phi: float | None) -> None:
    t = np.arange(0.0, 50.0)
    for seed in range(6):
        hi = 2.0 + np.random.default_rng(seed).normal(0.0, 0.02, t.size)
        est = ExponentialDegradation(threshold=7.1, phi=phi).fit(t, hi).predict_rul()
        assert est.median > 200.0  # noise at the healthy level is not a trend


def flat_then_exponential(t: np.ndarray, seed: int) -> np.ndarray:
    """HI = 2 + exp(-6 + 0.06 t): flat at 2 mm/s (noise 0.05) for ~60 % of life; 7.1 at t ≈ 127."""
    rng = np.random.default_rng(seed)
    wear = np.exp(-6.0 + 0.06 * t + rng.normal(0.0, 0.05, t.size))
    return 2.0 + wear + rng.normal(0.0, 0.05, t.size)


FLAT_FAILURE = (np.log(7.1 - 2.0) + 6.0) / 0.06


def test_flat_healthy_start_gives_accurate_late_rul_with_honest_intervals() -> None:
    t = np.arange(0.0, 127.0)
    within, covered = [], []
    for seed in range(20):
        hi = flat_then_exponential(t, seed)
        for now in (100, 110, 118):
            model = ExponentialDegradation(threshold=7.1, phi=2.0)
            est = model.fit(t[: now + 1], hi[: now + 1]).predict_rul()
            true_rul = FLAT_FAILURE - now
            within.append(abs(est.median - true_rul) <= 0.2 * true_rul)
            covered.append(est.lower <= true_rul <= est.upper)
    assert np.mean(within) > 0.8
    assert 0.65 <= np.mean(covered) <= 0.97  # nominal 80 %


def test_healthy_level_defaults_to_the_earliest_readings() -> None:
    t = np.arange(0.0, 119.0)
    hi = flat_then_exponential(t, seed=7)
    given = ExponentialDegradation(threshold=7.1, phi=2.0).fit(t, hi).predict_rul()
    estimated = ExponentialDegradation(threshold=7.1).fit(t, hi).predict_rul()
    assert estimated.median == pytest.approx(given.median, rel=0.1)


def test_exponential_model_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        ExponentialDegradation().fit([1.0], [1.0])
    with pytest.raises(ValueError):
        ExponentialDegradation(threshold=1.0, phi=2.0).fit([0.0, 1.0], [3.0, 3.0])
    with pytest.raises(ValueError):
        ExponentialDegradation(forgetting=0.0).fit([0.0, 1.0], [3.0, 3.0])


def test_window_features_are_causal_and_exact() -> None:
    x = np.column_stack([np.arange(10.0) * 2.0 + 1.0, np.r_[np.zeros(5), np.ones(5)]])
    units = np.r_[np.zeros(5), np.ones(5)]
    f = window_features(x, units, windows=(3,))
    # Columns: x (2), age, mean (2), slope (2).
    np.testing.assert_allclose(f[:, 2], [1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    np.testing.assert_allclose(f[4, 3], np.mean([5.0, 7.0, 9.0]))
    np.testing.assert_allclose(f[1:5, 5], 2.0)  # slope of 2 per row within unit 0
    np.testing.assert_allclose(f[5, 3], 11.0)  # unit 1 starts afresh
    np.testing.assert_allclose(f[5, 5], 0.0)
    # Changing a later row must not change earlier features.
    x2 = x.copy()
    x2[7:] += 100.0
    np.testing.assert_allclose(window_features(x2, units, (3,))[:7], f[:7])


def test_fleet_regressor_learns_a_degradation_trend() -> None:
    rng = np.random.default_rng(3)
    rows, ys, ids = [], [], []
    for unit in range(30):
        life = int(rng.integers(120, 250))
        age = np.arange(life)
        wear = np.exp((age - life) / 40.0)
        rows.append(np.column_stack([wear + rng.normal(0, 0.05, life), rng.normal(0, 1, life)]))
        ys.append(life - 1 - age)
        ids.append(np.full(life, unit))
    X, y, u = np.vstack(rows), np.concatenate(ys), np.concatenate(ids)
    train = u < 24
    model = FleetRulRegressor(max_iter=100).fit(X[train], y[train], unit_ids=u[train])
    pred = model.predict(X[~train], unit_ids=u[~train])
    truth = np.minimum(y[~train], 125.0)
    assert np.sqrt(np.mean((pred - truth) ** 2)) < 20.0
    assert np.all(pred >= 0)


Check = Callable[[FleetRulRegressor], object]
SklearnCase = Callable[[FleetRulRegressor, Check], None]
sklearn_checks: Callable[[SklearnCase], SklearnCase] = parametrize_with_checks(
    [FleetRulRegressor(max_iter=20)]
)


@sklearn_checks
def test_sklearn_contract(estimator: FleetRulRegressor, check: Check) -> None:
    check(estimator)


def test_phm08_penalises_late_predictions_more() -> None:
    assert phm08_score([50.0], [60.0]) > phm08_score([50.0], [40.0]) > 0.0
    assert phm08_score([50.0], [50.0]) == 0.0


def test_an_open_ended_interval_keeps_its_lower_bound_and_median() -> None:
    # Early in a fault: few readings above the healthy level, the rate is barely known.
    t = np.arange(0.0, 40.0)
    hi = flat_then_exponential(t + 30.0, seed=3)
    model = ExponentialDegradation(threshold=7.1, phi=2.0).fit(t, hi)
    est = model.predict_rul()
    assert est.open_ended and est.upper == np.inf
    assert np.isfinite(est.lower) and np.isfinite(est.median)
    assert est.lower <= est.median
    # A horizon shorter than the median: only the lower bound is left, still reported.
    short = model.predict_rul(horizon=est.median * 0.9)
    assert np.isfinite(short.lower) and short.median == np.inf and short.open_ended
    assert short.probability_beyond_horizon > 0.5
    assert short.horizon == pytest.approx(est.median * 0.9)
    closed = ExponentialDegradation(threshold=7.1, phi=1.0).fit(t + 30, degradation(t + 30))
    assert not closed.predict_rul().open_ended
    with pytest.raises(ValueError):
        model.predict_rul(horizon=0.0)


def commissioning_and_fault(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Features of one asset: 60 healthy windows, then 20 of a young outer-race fault whose
    4–8 kHz band and BPFO envelope rise while the ISO velocity barely moves."""
    rng = np.random.default_rng(seed)

    def level(centre: float, sd: float, n: int, gain: float = 1.0) -> np.ndarray:
        return centre * gain * np.exp(rng.normal(0.0, sd, n))

    baseline = {
        "velocity_rms_mms": level(1.5, 0.05, 60),
        "band_4k_8k_rms_ms2": level(0.2, 0.05, 60),
        "band_8k_12k_rms_ms2": np.full(60, np.nan),  # a 20 kHz sensor never reports it
        "env_bpfo_ms2": level(0.01, 0.1, 60),
        "kurtosis": level(3.0, 0.05, 60),
    }
    recent = {
        "velocity_rms_mms": level(1.5, 0.05, 20, gain=1.04),
        "band_4k_8k_rms_ms2": level(0.2, 0.05, 20, gain=1.5),
        "band_8k_12k_rms_ms2": np.full(20, np.nan),
        "env_bpfo_ms2": level(0.01, 0.1, 20, gain=6.0),
        "kurtosis": level(3.0, 0.05, 20, gain=3.0),  # not a level: never the indicator
    }
    return baseline, recent


def test_health_indicator_is_the_level_that_moved_most() -> None:
    baseline, recent = commissioning_and_fault()
    chosen = choose_health_indicator(baseline, recent, velocity_limit_mms=4.5)
    assert chosen is not None and chosen.name == "band_4k_8k_rms_ms2"
    assert chosen.moved_sd > 5.0
    assert chosen.phi == pytest.approx(0.2, rel=0.05)
    assert chosen.threshold == pytest.approx(10.0 * chosen.phi)
    # Once diagnosed, the envelope at the defect (×6, 18 sd) is the indicator.
    outer = choose_health_indicator(baseline, recent, fault="bearing_outer_race")
    assert outer is not None and outer.name == "env_bpfo_ms2"
    # The inner-race envelope did not move: the band is chosen again.
    inner = choose_health_indicator(baseline, recent, fault="bearing_inner_race")
    assert inner is not None and inner.name == "band_4k_8k_rms_ms2"
    # Nothing moved: nothing to trend.
    assert choose_health_indicator(baseline, baseline) is None
    only_velocity = {"velocity_rms_mms": baseline["velocity_rms_mms"] * 2.0}
    picked = choose_health_indicator(baseline, only_velocity, velocity_limit_mms=4.5)
    assert picked is not None and picked.threshold == 4.5
    with pytest.raises(ValueError):
        choose_health_indicator(baseline, recent, failure_ratio=1.0)


def test_rul_on_the_chosen_indicator_when_velocity_stays_flat() -> None:
    """The band grows exponentially to 10× its healthy level at t ≈ 100 h; velocity stays in
    its healthy noise. Trended on velocity there is no finite estimate; on the band there is,
    and its interval covers the truth."""
    rng = np.random.default_rng(11)
    t = np.arange(0.0, 80.0)
    band = 0.2 * (1.0 + np.exp(-6.0 + 0.082 * t + rng.normal(0.0, 0.05, t.size)))
    velocity = 1.5 * np.exp(rng.normal(0.0, 0.03, t.size))
    failure = (np.log(9.0) + 6.0) / 0.082
    baseline = {"band_4k_8k_rms_ms2": band[:30], "velocity_rms_mms": velocity[:30]}
    recent = {"band_4k_8k_rms_ms2": band[-5:], "velocity_rms_mms": velocity[-5:]}
    hi = choose_health_indicator(baseline, recent, velocity_limit_mms=4.5)
    assert hi is not None and hi.name == "band_4k_8k_rms_ms2"
    est = (
        ExponentialDegradation(threshold=hi.threshold, phi=hi.phi)
        .fit(t, band)
        .predict_rul(horizon=500.0)
    )
    truth = failure - t[-1]
    assert est.lower <= truth <= est.upper
    assert est.median == pytest.approx(truth, rel=0.35)
    flat = ExponentialDegradation(threshold=4.5).fit(t, velocity).predict_rul(horizon=500.0)
    assert flat.median == np.inf or flat.median > 5 * truth
