"""Prognostics: remaining useful life (RUL) with an uncertainty interval.

Two estimators for two situations:

* ``ExponentialDegradation`` — one asset, no failure history: a health indicator (e.g.
  velocity RMS) is assumed to grow as ``phi + exp(a + b·t)``; a Gaussian prior on (a, b) is
  updated by Bayesian linear regression on ``log(HI - phi)`` and the time at which HI reaches
  the failure threshold gives the RUL distribution (Gebraeel et al., 2005).
* ``FleetRulRegressor`` — fleets with run-to-failure histories: gradient boosting on causal
  windowed features (rolling mean and slope of each sensor, and age), RUL capped at a knee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "ExponentialDegradation",
    "FleetRulRegressor",
    "RulEstimate",
    "phm08_score",
    "window_features",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class RulEstimate:
    """RUL quantiles in the time unit of the inputs; ``inf`` when no degradation is seen."""

    median: float
    lower: float
    upper: float
    interval: tuple[float, float]
    probability_failed: float


class ExponentialDegradation(BaseEstimator):  # type: ignore[misc]
    """Bayesian exponential degradation model for one asset's health indicator.

    ``threshold`` is the HI value that counts as failure (e.g. the ISO zone C/D boundary);
    ``phi`` the HI floor (healthy level the exponential grows from). The prior on the growth
    rate ``b`` is N(``prior_rate``, ``prior_rate_sd``²) per time unit; without it a weak prior
    scaled to the observed time span is used. ``noise_sd`` is the sd of log-HI residuals (None:
    estimated from the data, bounded below to avoid over-confidence on short histories).
    """

    def __init__(
        self,
        threshold: float = 7.1,
        *,
        phi: float = 0.0,
        prior_rate: float = 0.0,
        prior_rate_sd: float | None = None,
        noise_sd: float | None = None,
        n_draws: int = 4000,
        random_state: int = 0,
    ) -> None:
        self.threshold = threshold
        self.phi = phi
        self.prior_rate = prior_rate
        self.prior_rate_sd = prior_rate_sd
        self.noise_sd = noise_sd
        self.n_draws = n_draws
        self.random_state = random_state

    def _log_hi(self, hi: FloatArray) -> FloatArray:
        # HI at or below the floor carries no degradation information: clamp just above.
        return np.log(np.maximum(hi - self.phi, 1e-9 * max(abs(self.threshold), 1.0)))

    def fit(self, t: ArrayLike, hi: ArrayLike) -> Self:
        """Posterior of (a, b) given the HI history ``hi`` observed at times ``t``."""
        tt = np.asarray(t, dtype=np.float64).ravel()
        yy = np.asarray(hi, dtype=np.float64).ravel()
        if tt.shape != yy.shape or tt.size < 2:
            raise ValueError("t and hi must be 1-D of equal length >= 2")
        keep = np.isfinite(tt) & np.isfinite(yy)
        tt, yy = tt[keep], yy[keep]
        if tt.size < 2 or np.ptp(tt) <= 0:
            raise ValueError("need at least two finite readings at distinct times")
        if self.threshold <= self.phi:
            raise ValueError("threshold must exceed phi")
        log_y = self._log_hi(yy)
        span = float(np.ptp(tt))
        # Weak prior: level anywhere within ±3 (factor e³) of the first readings; growth able to
        # reach the threshold within a fraction of the span or never.
        rate_sd = self.prior_rate_sd if self.prior_rate_sd is not None else 10.0 / span
        self.t0_ = float(tt[0])
        m0 = np.array([float(np.median(log_y[: max(3, log_y.size // 5)])), self.prior_rate])
        s0 = np.diag([3.0**2, rate_sd**2])
        if self.noise_sd is not None:
            noise_var = self.noise_sd**2
        else:
            design = np.column_stack([np.ones_like(tt), tt - self.t0_])
            resid = log_y - design @ np.linalg.lstsq(design, log_y, rcond=None)[0]
            dof = max(tt.size - 2, 1)
            noise_var = max(float(resid @ resid) / dof, 0.05**2)
        self.noise_var_ = noise_var
        self.mean_, self.cov_ = m0, s0
        self._update(tt, log_y)
        self.t_last_ = float(tt.max())
        return self

    def _update(self, tt: FloatArray, log_y: FloatArray) -> None:
        design = np.column_stack([np.ones_like(tt), tt - self.t0_])
        prec0 = np.linalg.inv(self.cov_)
        prec = prec0 + design.T @ design / self.noise_var_
        cov = np.linalg.inv(prec)
        self.mean_ = cov @ (prec0 @ self.mean_ + design.T @ log_y / self.noise_var_)
        self.cov_ = 0.5 * (cov + cov.T)

    def update(self, t: ArrayLike, hi: ArrayLike) -> Self:
        """Sequential Bayesian update with new readings (the posterior becomes the prior)."""
        check_is_fitted(self)
        tt = np.asarray(t, dtype=np.float64).ravel()
        yy = np.asarray(hi, dtype=np.float64).ravel()
        keep = np.isfinite(tt) & np.isfinite(yy)
        if keep.any():
            self._update(tt[keep], self._log_hi(yy[keep]))
            self.t_last_ = max(self.t_last_, float(tt[keep].max()))
        return self

    def predict_rul(
        self, t_now: float | None = None, *, interval: tuple[float, float] = (0.1, 0.9)
    ) -> RulEstimate:
        """RUL distribution at ``t_now`` (default: last reading) from posterior draws."""
        check_is_fitted(self)
        now = self.t_last_ if t_now is None else float(t_now)
        rng = np.random.default_rng(self.random_state)
        draws = rng.multivariate_normal(self.mean_, self.cov_, size=self.n_draws)
        level = math.log(self.threshold - self.phi)
        a, b = draws[:, 0], draws[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = np.where(b > 0, (level - a) / b, np.inf) + self.t0_
        rul = crossing - now
        failed = float(np.mean(rul <= 0))
        rul = np.maximum(rul, 0.0)
        lo, med, hi = np.quantile(rul, [interval[0], 0.5, interval[1]], method="inverted_cdf")
        return RulEstimate(float(med), float(lo), float(hi), interval, failed)


def _group_starts(unit_ids: NDArray[Any]) -> NDArray[np.intp]:
    """Index of the first row of each row's unit (rows of a unit must be contiguous)."""
    n = unit_ids.shape[0]
    new = np.r_[True, unit_ids[1:] != unit_ids[:-1]] if n else np.zeros(0, bool)
    return np.maximum.accumulate(np.where(new, np.arange(n), 0))


def window_features(
    X: ArrayLike, unit_ids: ArrayLike | None = None, windows: tuple[int, ...] = (5, 20)
) -> FloatArray:
    """Causal rolling mean and least-squares slope of each column, plus age (rows so far).

    Rows of one unit are contiguous and in time order. Computed with grouped cumulative sums,
    so the cost is a few passes over the array whatever the number of units.
    """
    x = np.asarray(X, dtype=np.float64)
    n, n_cols = x.shape
    ids = np.zeros(n, np.int64) if unit_ids is None else np.asarray(unit_ids)
    start = _group_starts(ids)
    pos = np.arange(n) - start  # age within the unit, 0-based
    # Centre per unit (a constant shift) so the cumulative sums stay well conditioned.
    centre = x[start]
    xc = x - centre
    t = pos.astype(np.float64)
    pad = np.zeros((1, n_cols))
    cx = np.vstack([pad, np.cumsum(xc, axis=0)])
    ctx = np.vstack([pad, np.cumsum(xc * t[:, None], axis=0)])
    out = [x, (pos + 1.0)[:, None]]
    for w in windows:
        length = np.minimum(pos + 1, w)
        first = np.arange(n) + 1 - length  # first row of the window
        last = np.arange(n) + 1
        sx = cx[last] - cx[first]
        stx = ctx[last] - ctx[first]
        L = length.astype(np.float64)[:, None]
        t_hi = t[:, None]
        t_lo = t_hi - L + 1
        st = (t_lo + t_hi) * L / 2.0
        stt = (t_hi * (t_hi + 1) * (2 * t_hi + 1) - (t_lo - 1) * t_lo * (2 * t_lo - 1)) / 6.0
        denom = L * stt - st**2
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.where(denom > 0, (L * stx - st * sx) / np.where(denom > 0, denom, 1), 0.0)
        out += [sx / L + centre, slope]
    return np.hstack(out)


class FleetRulRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Gradient boosting on causal windowed features; RUL target capped at ``max_rul``.

    ``fit(X, y, unit_ids=...)`` with rows of each unit contiguous and in time order (rows are
    cycles or scoring windows); ``predict`` returns the RUL at every row, using that row's
    history only. Without ``unit_ids`` all rows are one unit.
    """

    def __init__(
        self,
        *,
        windows: tuple[int, ...] = (10, 30),
        max_rul: float = 125.0,
        max_iter: int = 300,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        random_state: int = 0,
    ) -> None:
        self.windows = windows
        self.max_rul = max_rul
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike, *, unit_ids: ArrayLike | None = None) -> Self:
        """Learn RUL from run-to-failure rows (y = cycles to failure at each row)."""
        Xv, yv = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        target = np.minimum(yv, self.max_rul)
        self.model_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=min(self.min_samples_leaf, max(1, Xv.shape[0] // 4)),
            random_state=self.random_state,
        )
        self.model_.fit(window_features(Xv, self._ids(unit_ids, Xv), self.windows), target)
        self.n_iter_ = int(self.model_.n_iter_)
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Predictions are clipped to [0, ...) and trained on a capped target: a generic
        # regression target with negative values (sklearn's common checks) scores poorly.
        tags.regressor_tags.poor_score = True
        return tags

    def predict(self, X: ArrayLike, *, unit_ids: ArrayLike | None = None) -> FloatArray:
        """RUL at each row given the rows before it in the same unit."""
        check_is_fitted(self)
        Xv = validate_data(self, X, dtype=np.float64, reset=False)
        feats = window_features(Xv, self._ids(unit_ids, Xv), self.windows)
        return np.clip(np.asarray(self.model_.predict(feats), dtype=np.float64), 0.0, None)

    @staticmethod
    def _ids(unit_ids: ArrayLike | None, X: FloatArray) -> NDArray[Any] | None:
        if unit_ids is None:
            return None
        ids = np.asarray(unit_ids)
        if ids.shape != (X.shape[0],):
            raise ValueError(f"unit_ids must have shape ({X.shape[0]},), got {ids.shape}")
        return ids


def phm08_score(rul_true: ArrayLike, rul_pred: ArrayLike) -> float:
    """PHM08 challenge score: asymmetric exponential penalty, late predictions cost more."""
    d = np.asarray(rul_pred, dtype=np.float64) - np.asarray(rul_true, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))
