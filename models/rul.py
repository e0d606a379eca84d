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

from models._health_indicator import DEFECT_ENVELOPE, HealthIndicator, choose_health_indicator

__all__ = [
    "DEFECT_ENVELOPE",
    "ExponentialDegradation",
    "FleetRulRegressor",
    "HealthIndicator",
    "RulEstimate",
    "choose_health_indicator",
    "phm08_score",
    "window_features",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class RulEstimate:
    """RUL quantiles in the time unit of the inputs.

    A quantile is ``inf`` when it lies beyond ``horizon`` (or no degradation is seen in
    that share of the posterior): the interval is then open-ended, which is an answer
    ("at least ``lower``, most likely ``median``"), not a missing one.
    """

    median: float
    lower: float
    upper: float
    interval: tuple[float, float]
    probability_failed: float
    horizon: float = math.inf
    probability_beyond_horizon: float = 0.0

    @property
    def open_ended(self) -> bool:
        """True when the upper quantile is beyond the horizon (reported as ``inf``)."""
        return not math.isfinite(self.upper)


class ExponentialDegradation(BaseEstimator):  # type: ignore[misc]
    """Bayesian exponential degradation model for one asset's health indicator.

    ``threshold`` is the HI value that counts as failure (e.g. the ISO zone C/D boundary);
    ``phi`` the healthy HI level the exponential grows from: pass the commissioning median
    (None: the median of the earliest readings). Readings less than half the healthy noise
    above ``phi`` carry no trend and are left out. ``forgetting`` (per reading, 1 = none)
    weights recent readings, so a long flat start does not dilute the trend. The prior on
    the growth rate ``b`` is N(``prior_rate``, ``prior_rate_sd``²) per time unit (None: weak,
    scaled to the span). ``noise_sd`` is the sd of log-HI residuals (None: estimated,
    bounded below).
    """

    def __init__(
        self,
        threshold: float = 7.1,
        *,
        phi: float | None = None,
        prior_rate: float = 0.0,
        prior_rate_sd: float | None = None,
        noise_sd: float | None = None,
        forgetting: float = 0.9,
        n_draws: int = 4000,
        random_state: int = 0,
    ) -> None:
        self.threshold = threshold
        self.phi = phi
        self.prior_rate = prior_rate
        self.prior_rate_sd = prior_rate_sd
        self.noise_sd = noise_sd
        self.forgetting = forgetting
        self.n_draws = n_draws
        self.random_state = random_state

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
        if not 0.0 < self.forgetting <= 1.0:
            raise ValueError("forgetting must be in (0, 1]")
        order = np.argsort(tt, kind="stable")
        tt, yy = tt[order], yy[order]
        early = yy[: max(3, yy.size // 5)]
        phi = float(np.median(early)) if self.phi is None else float(self.phi)
        if self.threshold <= phi:
            raise ValueError("threshold must exceed phi")
        self.phi_ = phi
        # Healthy noise of the HI: an excess below it is noise, not degradation.
        spread = _MAD_TO_SIGMA * float(np.median(np.abs(early - np.median(early))))
        self.hi_noise_sd_ = max(spread, 0.01 * (self.threshold - phi))
        self.t0_ = float(tt[0])
        self.t_hist_, self.hi_hist_ = tt, yy
        self._posterior()
        return self

    def _posterior(self) -> None:
        tt, yy = self.t_hist_, self.hi_hist_
        span = float(np.ptp(tt))
        rate_sd = self.prior_rate_sd if self.prior_rate_sd is not None else 10.0 / span
        excess = yy - self.phi_
        use = excess > _EXCESS_SD * self.hi_noise_sd_
        # Exponential forgetting by reading rank: the newest reading has weight 1.
        w = self.forgetting ** np.arange(tt.size - 1, -1, -1, dtype=np.float64)
        t_u, w_u = tt[use] - self.t0_, w[use]
        log_y = np.log(excess[use]) if use.any() else np.zeros(0)
        # Additive HI noise is large in log space near the floor (delta method).
        base_var = (self.hi_noise_sd_ / excess[use]) ** 2 if use.any() else np.zeros(0)
        design = np.column_stack([np.ones_like(t_u), t_u])
        level0 = float(log_y[0]) if log_y.size else math.log(2.0 * self.hi_noise_sd_)
        m0 = np.array([level0, self.prior_rate])
        prec0 = np.diag([1.0 / 3.0**2, 1.0 / rate_sd**2])
        if self.noise_sd is not None:
            noise_var = self.noise_sd**2
        else:
            noise_var = _MIN_LOG_NOISE_SD**2
            for _ in range(2):  # noise and fit depend on each other: two passes settle
                mean, _cov = _weighted_posterior(
                    m0, prec0, design, log_y, w_u / (noise_var + base_var)
                )
                r2 = (log_y - design @ mean) ** 2 - base_var
                n_eff = _effective_n(w_u)
                if n_eff > 2:
                    noise_var = max(
                        float(np.sum(w_u * r2) / np.sum(w_u)) * n_eff / (n_eff - 2),
                        _MIN_LOG_NOISE_SD**2,
                    )
        self.noise_var_ = noise_var
        self.mean_, self.cov_ = _weighted_posterior(
            m0, prec0, design, log_y, w_u / (noise_var + base_var)
        )
        # Few effective readings: a Student-t posterior, not an over-confident Gaussian.
        self.dof_ = max(_effective_n(w_u) - 2.0, 1.0)
        self.t_last_ = float(tt.max())

    def update(self, t: ArrayLike, hi: ArrayLike) -> Self:
        """Add new readings; the posterior equals a fit on the whole history."""
        check_is_fitted(self)
        tt = np.asarray(t, dtype=np.float64).ravel()
        yy = np.asarray(hi, dtype=np.float64).ravel()
        keep = np.isfinite(tt) & np.isfinite(yy)
        if keep.any():
            t_all = np.r_[self.t_hist_, tt[keep]]
            order = np.argsort(t_all, kind="stable")
            self.t_hist_ = t_all[order]
            self.hi_hist_ = np.r_[self.hi_hist_, yy[keep]][order]
            self._posterior()
        return self

    def predict_rul(
        self,
        t_now: float | None = None,
        *,
        interval: tuple[float, float] = (0.1, 0.9),
        horizon: float | None = None,
    ) -> RulEstimate:
        """RUL distribution at ``t_now`` (default: last reading) from posterior draws.

        Quantiles beyond ``horizon`` (None: unbounded) come back as ``inf``; the others stay
        finite, so a wide posterior still gives its lower bound and median.
        """
        check_is_fitted(self)
        now = self.t_last_ if t_now is None else float(t_now)
        rng = np.random.default_rng(self.random_state)
        normal = rng.multivariate_normal(np.zeros(2), self.cov_, size=self.n_draws)
        scale = np.sqrt(self.dof_ / rng.chisquare(self.dof_, size=self.n_draws))
        draws = self.mean_ + normal * scale[:, None]
        level = math.log(self.threshold - self.phi_)
        a, b = draws[:, 0], draws[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = np.where(b > 0, (level - a) / b, np.inf) + self.t0_
        rul = crossing - now
        failed = float(np.mean(rul <= 0))
        rul = np.maximum(rul, 0.0)
        limit = math.inf if horizon is None else float(horizon)
        if not limit > 0:
            raise ValueError(f"horizon must be > 0, got {horizon!r}")
        lo, med, hi = np.quantile(rul, [interval[0], 0.5, interval[1]], method="inverted_cdf")
        lo, med, hi = (float(q) if q <= limit else math.inf for q in (lo, med, hi))
        beyond = float(np.mean(rul > limit))
        return RulEstimate(med, lo, hi, interval, failed, limit, beyond)


_MAD_TO_SIGMA = 1.4826
#: Readings less than this many healthy-noise sd above phi are taken as not yet degrading.
_EXCESS_SD = 0.5
#: Floor of the log-HI residual sd: avoids over-confidence on short, smooth histories.
_MIN_LOG_NOISE_SD = 0.05


def _effective_n(w: FloatArray) -> float:
    """Kish effective sample size of weights ``w``."""
    return float(w.sum() ** 2 / (w**2).sum()) if w.size and w.sum() > 0 else 0.0


def _weighted_posterior(
    m0: FloatArray, prec0: FloatArray, design: FloatArray, y: FloatArray, w: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Conjugate Gaussian posterior of linear-regression weights with per-row precisions."""
    prec = prec0 + design.T @ (design * w[:, None])
    cov = np.linalg.inv(prec)
    mean = cov @ (prec0 @ m0 + design.T @ (w * y))
    return np.asarray(mean, dtype=np.float64), np.asarray(0.5 * (cov + cov.T), dtype=np.float64)


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
