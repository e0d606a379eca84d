"""State detection: a per-asset robust baseline scored over the whole fleet at once.

Each asset is characterised on its commissioning window: features are regressed on the
operating condition (speed, load, ...), residuals are standardised robustly (median/MAD) and
combined through a shrunk correlation matrix into a Mahalanobis distance. The alarm threshold
is the chi-square quantile matching a stated false-alarm rate per asset-year, corrected by the
ratio of observed to nominal commissioning medians (the usual MCD consistency correction).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["FleetBaseline", "Verdict"]

FloatArray = NDArray[np.float64]
Verdict = Literal["false_alarm", "confirmed_fault"]

_MAD_TO_SIGMA = 1.4826
_SECONDS_PER_YEAR = 365.25 * 86400.0
# Scale floor for a feature that never moved during commissioning: 0.5 % of its level.
_CONSTANT_LEVEL_SHARE = 0.005
#: Folds of the out-of-sample calibration (leave-one-out up to this many rows per asset).
_CV_FOLDS = 30
#: Pooled out-of-sample scores needed before the fleet's empirical tail is trusted.
_MIN_POOLED = 100
_Model = tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_], FloatArray]


@dataclass(frozen=True)
class _LabelledWindow:
    asset_id: Any
    verdict: Verdict
    X: FloatArray


class FleetBaseline(OutlierMixin, BaseEstimator):  # type: ignore[misc]
    """Robust per-asset baseline detector with a calibrated false-alarm rate.

    ``fit(X, asset_ids=..., conditions=...)`` on commissioning rows; scoring takes the same
    keywords. Rows of assets not seen in ``fit`` are scored against the pooled fleet baseline.
    NaN features are treated as missing (the distance uses the observed ones only).
    """

    def __init__(
        self,
        *,
        false_alarms_per_year: float = 1.0,
        scoring_interval_s: float = 600.0,
        shrinkage: float | None = None,
        min_scale_fraction: float = 0.01,
    ) -> None:
        self.false_alarms_per_year = false_alarms_per_year
        self.scoring_interval_s = scoring_interval_s
        self.shrinkage = shrinkage
        self.min_scale_fraction = min_scale_fraction

    # ----------------------------------------------------------------------------- fitting
    def fit(
        self,
        X: ArrayLike,
        y: None = None,
        *,
        asset_ids: ArrayLike | None = None,
        conditions: ArrayLike | None = None,
    ) -> Self:
        """Learn each asset's baseline from commissioning rows (one row = one window)."""
        if self.false_alarms_per_year <= 0 or self.scoring_interval_s <= 0:
            raise ValueError("false_alarms_per_year and scoring_interval_s must be > 0")
        Xv = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        ids = self._ids(asset_ids, Xv.shape[0])
        cond = self._design(conditions, Xv.shape[0])
        self.n_conditions_ = cond.shape[1] - 1

        assets = np.unique(ids)
        models = [self._fit_one(Xv, cond, None)]  # index 0: pooled fleet baseline
        models += [self._fit_one(Xv[ids == a], cond[ids == a], models[0][1]) for a in assets]
        self.assets_ = assets
        self.coef_ = np.stack([m[0] for m in models])  # (A+1, p, F)
        self.scale_ = np.stack([m[1] for m in models])  # (A+1, F)
        self.precision_ = np.stack([m[2] for m in models])  # (A+1, F, F) on z
        self.used_ = np.stack([m[3] for m in models])  # (A+1, F) feature observed at all
        self.corr_ = np.stack([m[4] for m in models])

        # Calibrate on out-of-sample scores: a model scores its own commissioning rows lower
        # than fresh windows (with ~30 rows and ~18 features, markedly so).
        p_alarm = self.false_alarms_per_year * self.scoring_interval_s / _SECONDS_PER_YEAR
        self.p_alarm_ = min(p_alarm, 0.5)
        n_features = Xv.shape[1]
        nominal = stats.chi2.isf(self.p_alarm_, n_features)
        ref_ratio = nominal / stats.chi2.median(n_features)
        d2_in, _ = self._distance(Xv, ids, cond)
        d2_out = self._out_of_sample(Xv, ids, cond, models)
        idx = self._index(ids)
        factor = np.ones(len(models))
        threshold = np.full(len(models), nominal)
        own = [d2_in[np.isfinite(d2_in)]]
        own += [d2_out[(idx == k) & np.isfinite(d2_out)] for k in range(1, len(models))]
        medians = np.array([float(np.median(o)) if o.size >= 5 else np.nan for o in own])
        medians = np.where(medians > 0, medians, np.nan)
        # One asset's ~30 scores cannot show a 1e-4 tail: pool the shape over the fleet
        # (scores over their asset's median), keep the level (median) per asset.
        pooled = [o / m for o, m in zip(own[1:], medians[1:], strict=True) if np.isfinite(m)]
        ratio = ref_ratio
        self.tail_shape_ = 0.0
        if pooled and sum(o.size for o in pooled) >= _MIN_POOLED:
            allp = np.concatenate(pooled)
            self.tail_shape_ = _tail_shape(allp)
            ratio = max(ratio, _tail_quantile(allp, self.p_alarm_, self.tail_shape_))
        for k in range(len(models)):
            if not np.isfinite(medians[k]):
                continue
            factor[k] = medians[k] / stats.chi2.median(n_features)
            if k == 0:  # the fleet pool has thousands of rows: its own tail is identified
                tail = _tail_quantile(own[0], self.p_alarm_, _tail_shape(own[0] / medians[0]))
                threshold[k] = max(factor[k] * nominal, tail)
            else:
                threshold[k] = medians[k] * ratio
        self.consistency_ = factor
        self.threshold_ = threshold
        # Scores are distances over the asset's own threshold, so one offset serves the fleet.
        self.offset_ = -1.0
        self.labelled_history_: list[_LabelledWindow] = []
        return self

    def _out_of_sample(
        self, X: FloatArray, ids: NDArray[Any], cond: FloatArray, models: list[_Model]
    ) -> FloatArray:
        """Each commissioning row's distance under its asset's model fitted without it."""
        idx = self._index(ids)
        row_model = idx.copy()  # assets too small to split keep their in-sample model
        folds: list[_Model] = []
        for k in range(1, len(models)):
            rows = np.flatnonzero(idx == k)
            if rows.size < 5:
                continue
            n_folds = min(rows.size, _CV_FOLDS)
            fold = np.arange(rows.size) % n_folds  # interleaved: neighbours are correlated
            for j in range(n_folds):
                train = rows[fold != j]
                folds.append(self._fit_one(X[train], cond[train], models[0][1]))
                row_model[rows[fold == j]] = len(models) + len(folds) - 1
        every = models + folds
        stacked = (
            np.stack([m[0] for m in every]),
            np.stack([m[1] for m in every]),
            np.stack([m[2] for m in every]),
            np.stack([m[3] for m in every]),
            np.stack([m[4] for m in every]),
        )
        d2, _ = _distance(X, row_model, cond, stacked)
        return d2

    def _fit_one(self, X: FloatArray, cond: FloatArray, fleet_scale: FloatArray | None) -> _Model:
        n, n_features = X.shape
        p = cond.shape[1]
        obs = np.isfinite(X)
        Xz = np.where(obs, X, 0.0)
        w = obs.astype(np.float64)
        if p == 1:
            coef = _nanmedian(np.where(obs, X, np.nan))[None, :]
        else:
            coef = _weighted_lstsq(cond, Xz, w)
            # One robust re-weighting pass: commissioning data have their own outliers.
            resid = np.where(obs, X - cond @ coef, np.nan)
            mad = _MAD_TO_SIGMA * _nanmedian(np.abs(resid))
            keep = obs & (np.abs(resid) <= 3.5 * np.where(mad > 0, mad, np.inf))
            coef = _weighted_lstsq(cond, Xz, keep.astype(np.float64))
        coef = np.where(np.isfinite(coef), coef, 0.0)
        resid = np.where(obs, X - cond @ coef, np.nan)
        used = obs.any(axis=0)
        mad = _MAD_TO_SIGMA * _nanmedian(np.abs(resid))
        mad = np.where(np.isfinite(mad), mad, 0.0)
        floor_ref = mad if fleet_scale is None else fleet_scale
        floor = np.maximum(self.min_scale_fraction * floor_ref, 1e-12)
        # A sensor's resolution bounds how small a spread can be real: a transmitter that
        # reports 0.1 degC steps and sat on one value during commissioning must not alarm
        # on its next quantum. Unknown resolution (one constant value) falls back to a
        # small share of the level.
        quantum = _resolution(X)
        constant = (quantum == 0.0) & (mad == 0.0)
        level = np.abs(coef[0]) if coef.shape[0] else np.zeros(n_features)
        scale = np.maximum.reduce(
            [mad, floor, quantum, np.where(constant, _CONSTANT_LEVEL_SHARE * level, 0.0)]
        )
        z = np.clip(np.where(obs, resid / scale, 0.0), -4.0, 4.0)
        corr = (z.T @ z) / max(n, 1)
        sd = np.sqrt(np.diag(corr))
        sd = np.where(sd > 0, sd, 1.0)
        corr = corr / np.outer(sd, sd)
        alpha = self.shrinkage
        if alpha is None:
            alpha = float(np.clip(n_features / (n + n_features), 0.05, 1.0))
        corr = (1.0 - alpha) * corr + alpha * np.eye(n_features)
        np.fill_diagonal(corr, 1.0)
        f64 = np.float64
        return (
            np.asarray(coef, dtype=f64),
            np.asarray(scale, dtype=f64),
            np.asarray(np.linalg.inv(corr), dtype=f64),
            np.asarray(used, dtype=np.bool_),
            np.asarray(corr, dtype=f64),
        )

    # ----------------------------------------------------------------------------- scoring
    def _ids(self, asset_ids: ArrayLike | None, n: int) -> NDArray[Any]:
        if asset_ids is None:
            return np.zeros(n, dtype=np.int64)
        ids = np.asarray(asset_ids)
        if ids.shape != (n,):
            raise ValueError(f"asset_ids must have shape ({n},), got {ids.shape}")
        return ids

    def _design(self, conditions: ArrayLike | None, n: int) -> FloatArray:
        ones = np.ones((n, 1))
        if conditions is None:
            return ones
        c = np.asarray(conditions, dtype=np.float64).reshape(n, -1)
        if not np.all(np.isfinite(c)):
            raise ValueError("conditions must be finite")
        return np.hstack([ones, c])

    def _index(self, ids: NDArray[Any]) -> NDArray[np.intp]:
        """Row → model index (0 = fleet fallback for assets unseen in fit)."""
        pos = np.searchsorted(self.assets_, ids)
        pos = np.minimum(pos, len(self.assets_) - 1)
        known = self.assets_[pos] == ids
        return np.where(known, pos + 1, 0)

    def _distance(
        self, X: FloatArray, ids: NDArray[Any], cond: FloatArray
    ) -> tuple[FloatArray, NDArray[np.intp]]:
        """Squared robust Mahalanobis distance per row, rescaled to the full-dimension chi²."""
        stacked = (self.coef_, self.scale_, self.precision_, self.used_, self.corr_)
        return _distance(X, self._index(ids), cond, stacked)

    def anomaly_ratio(
        self,
        X: ArrayLike,
        *,
        asset_ids: ArrayLike | None = None,
        conditions: ArrayLike | None = None,
    ) -> FloatArray:
        """Distance over the asset's threshold: ≥ 1 means alarm. Handy for ranking a fleet."""
        check_is_fitted(self)
        Xv = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64, reset=False)
        ids = self._ids(asset_ids, Xv.shape[0])
        d2, _ = self._distance(Xv, ids, self._design(conditions, Xv.shape[0]))
        return np.asarray(d2 / self.threshold_[self._index(ids)], dtype=np.float64)

    def score_samples(
        self,
        X: ArrayLike,
        *,
        asset_ids: ArrayLike | None = None,
        conditions: ArrayLike | None = None,
    ) -> FloatArray:
        """Minus the anomaly ratio (higher = more normal, as in scikit-learn); alarm below -1."""
        return -self.anomaly_ratio(X, asset_ids=asset_ids, conditions=conditions)

    def decision_function(
        self,
        X: ArrayLike,
        *,
        asset_ids: ArrayLike | None = None,
        conditions: ArrayLike | None = None,
    ) -> FloatArray:
        """``score_samples - offset_``: negative means anomalous for that asset."""
        scores = self.score_samples(X, asset_ids=asset_ids, conditions=conditions)
        return np.asarray(scores - self.offset_, dtype=np.float64)

    def predict(
        self,
        X: ArrayLike,
        *,
        asset_ids: ArrayLike | None = None,
        conditions: ArrayLike | None = None,
    ) -> NDArray[np.int64]:
        """+1 for normal rows, -1 for anomalous ones."""
        d = self.decision_function(X, asset_ids=asset_ids, conditions=conditions)
        return np.where(d < 0, -1, 1).astype(np.int64)

    # ---------------------------------------------------------------------------- feedback
    def apply_verdict(
        self,
        asset_id: Any,
        verdict: Verdict,
        X_window: ArrayLike,
        *,
        conditions: ArrayLike | None = None,
        margin: float = 1.1,
    ) -> float:
        """Feed an engineer's verdict on alarmed rows back; returns the asset's threshold.

        A false alarm lifts that asset's threshold just above the rejected rows (so the same
        behaviour no longer alarms); a confirmed fault keeps the rows as labelled history.
        """
        check_is_fitted(self)
        if verdict not in ("false_alarm", "confirmed_fault"):
            raise ValueError(f"unknown verdict {verdict!r}")
        Xv = np.atleast_2d(np.asarray(X_window, dtype=np.float64))
        ids = np.full(Xv.shape[0], asset_id, dtype=self.assets_.dtype)
        k = int(self._index(ids)[0])
        if k == 0:
            raise ValueError(f"asset {asset_id!r} has no baseline of its own; fit it first")
        self.labelled_history_.append(_LabelledWindow(asset_id, verdict, Xv.copy()))
        if verdict == "false_alarm":
            d2, _ = self._distance(Xv, ids, self._design(conditions, Xv.shape[0]))
            finite = d2[np.isfinite(d2)]
            if finite.size:
                self.threshold_[k] = max(self.threshold_[k], margin * float(finite.max()))
        return float(self.threshold_[k])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _distance(
    X: FloatArray,
    idx: NDArray[np.intp],
    cond: FloatArray,
    stacked: _Model,
) -> tuple[FloatArray, NDArray[np.intp]]:
    """Distance of each row under model ``idx`` of the stacked parameters (chi² scale, F dof)."""
    coef, scale, precision, used, corr = stacked
    n, n_features = X.shape
    # Rows grouped by asset (already the case for assets × windows batches): one BLAS
    # call per asset, instead of gathering an F×F matrix per row.
    order = None if np.all(idx[:-1] <= idx[1:]) else np.argsort(idx, kind="stable")
    sidx = idx if order is None else idx[order]
    Xs = X if order is None else X[order]
    Cs = cond if order is None else cond[order]
    starts = np.flatnonzero(np.r_[True, sidx[1:] != sidx[:-1]]) if n else np.arange(0)
    ends = np.r_[starts[1:], n]
    z = np.empty_like(Xs)
    d2 = np.empty(n)
    for start, end, a in zip(starts, ends, sidx[starts], strict=True):
        seg = slice(start, end)
        z[seg] = (Xs[seg] - Cs[seg] @ coef[a]) / scale[a]
        d2[seg] = np.einsum("nf,nf->n", z[seg] @ precision[a], z[seg])
    dof = np.full(n, n_features, dtype=np.intp)
    # Rows with missing features: marginal distance on the observed block, grouped by
    # missingness pattern so each pattern costs one batched solve.
    if not (np.isfinite(Xs).all() and used[sidx[starts]].all()):
        obs = np.isfinite(Xs) & used[sidx]
        dof = obs.sum(axis=1)
        full = dof == n_features
        z = np.where(obs, z, 0.0)
        rest = np.flatnonzero(~full)
        patterns, inverse = np.unique(obs[rest], axis=0, return_inverse=True)
        for k, pattern in enumerate(patterns):
            rows = rest[inverse.ravel() == k]
            if not pattern.any():
                d2[rows] = 0.0
                continue
            sub = corr[sidx[rows]][:, pattern][:, :, pattern]
            zo = z[rows][:, pattern]
            d2[rows] = np.einsum("nf,nf->n", zo, np.linalg.solve(sub, zo[..., None])[..., 0])
        # Map the observed-dimension chi² onto the full dimension so thresholds compare:
        # same tail probability, in log space so that no distance is capped.
        part = ~full & (dof > 0)
        d2[part] = _chi2_isf_log(_chi2_logsf(d2[part], dof[part]), n_features)
    if order is not None:
        d2[order] = d2.copy()
        dof[order] = dof.copy()
    return d2, dof


#: Below this log tail probability the incomplete gamma underflows: use its asymptote.
_LOG_SF_EXACT = -600.0


def _chi2_logsf(x: ArrayLike, dof: ArrayLike) -> FloatArray:
    """log P(χ²_dof > x), finite however large x is (scipy's underflows near x ≈ 1500).

    Far in the tail, Γ(a, y) ≈ y^(a−1)·e^(−y)·(1 + (a−1)/y + (a−1)(a−2)/y²).
    """
    xv, kv = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(dof, np.float64))
    a, y = kv / 2.0, np.maximum(xv, 0.0) / 2.0
    lower = special.gammainc(a, y)
    with np.errstate(divide="ignore"):
        # log1p keeps the precision where the tail probability is close to 1.
        exact = np.where(lower < 0.5, np.log1p(-lower), np.log(special.gammaincc(a, y)))
    safe_y = np.maximum(y, 1.0)
    series = 1.0 + (a - 1.0) / safe_y + (a - 1.0) * (a - 2.0) / safe_y**2
    asym = (a - 1.0) * np.log(safe_y) - y - special.gammaln(a) + np.log(np.maximum(series, 1e-3))
    return np.asarray(np.where(exact > _LOG_SF_EXACT, exact, asym), dtype=np.float64)


def _chi2_isf_log(log_sf: ArrayLike, dof: float) -> FloatArray:
    """The x with log P(χ²_dof > x) = ``log_sf``: inverse of ``_chi2_logsf``, uncapped."""
    ls = np.asarray(log_sf, dtype=np.float64)
    out = np.empty_like(ls)
    near = ls > _LOG_SF_EXACT
    body = ls > -math.log(2.0)  # tail probability over one half: invert the lower tail
    out[body] = stats.chi2.ppf(-np.expm1(ls[body]), dof)
    out[near & ~body] = stats.chi2.isf(np.exp(ls[near & ~body]), dof)
    far = ls[~near]
    if far.size:
        # Newton on the asymptote's log tail, from its dominant term (x ≈ −2·log sf).
        x = -2.0 * far + 2.0 * max(dof / 2.0 - 1.0, 0.0) * np.log(-far)
        for _ in range(30):
            slope = (dof / 2.0 - 1.0) / x - 0.5
            step = (_chi2_logsf(x, dof) - far) / slope
            x = np.maximum(x - step, 0.5 * x)
            if np.all(np.abs(step) <= 1e-10 * x):
                break
        out[~near] = x
    return out


_TAIL_FRACTION = 0.1
#: The fitted tail shape is used down to this many over the number of pooled scores.
_TRUSTED_DECADES = 0.1
#: Excesses needed to fit a tail shape (fewer: exponential tail).
_MIN_EXCESSES = 10
#: Tail-shape prior (t-like features with ~8 degrees of freedom) and its weight in excesses.
_PRIOR_SHAPE, _PRIOR_EXCESSES = 0.25, 30


def _excesses(scores: FloatArray) -> tuple[float, FloatArray]:
    u = float(np.quantile(scores, 1.0 - _TAIL_FRACTION))
    return u, scores[scores > u] - u


def _resolution(X: FloatArray) -> FloatArray:
    """Per column, the smallest step between distinct observed values (0 if fewer than two)."""
    if X.shape[0] < 2:
        return np.zeros(X.shape[1])
    steps = np.diff(np.sort(X, axis=0), axis=0)  # NaN sort last and give NaN steps
    steps = np.where(np.isfinite(steps) & (steps > 0), steps, np.inf)
    smallest = steps.min(axis=0)
    return np.where(np.isfinite(smallest), smallest, 0.0)


def _tail_shape(scores: FloatArray) -> float:
    """Generalised-Pareto shape of the excesses above the 90th percentile, kept in [0, 0.5].

    The estimate is pulled towards a prior shape worth ``_PRIOR_EXCESSES`` excesses: a
    short commissioning cannot show how heavy the tail is, and assuming a light one there
    made thresholds jump (×5–20) as soon as more rows revealed the vibration features'
    heavy tails. With many excesses the data decide.
    """
    _, excess = _excesses(scores[np.isfinite(scores)])
    if excess.size < _MIN_EXCESSES or not excess.mean() > 0:
        return _PRIOR_SHAPE
    shape, _, _ = stats.genpareto.fit(excess / excess.mean(), floc=0.0)
    # No lighter-than-exponential tails; cap heavy tails to avoid wild extrapolation.
    fitted = float(np.clip(shape, 0.0, 0.5))
    m = excess.size
    return (m * fitted + _PRIOR_EXCESSES * _PRIOR_SHAPE) / (m + _PRIOR_EXCESSES)


def _tail_quantile(scores: FloatArray, p: float, shape: float) -> float:
    """Score exceeded with probability ``p``, from a GPD tail above the 90th percentile.

    Peaks-over-threshold: vibration features have heavier tails than the Gaussian, so the
    chi-square quantile alone would alarm far more often than promised. The fitted shape is
    trusted a decade beyond the data (p ≥ 0.1/n); beyond, the tail goes on exponentially
    at the GPD's local scale there. A heavy shape extrapolated over several decades would
    make the threshold swing with every added commissioning row (and grow with their number).
    """
    if p >= _TAIL_FRACTION:
        return float(np.quantile(scores, 1.0 - p))
    u, excess = _excesses(scores)
    if excess.size < 3:
        return -np.inf
    beta = float(excess.mean()) * (1.0 - shape)  # GPD mean excess is beta / (1 - shape)
    p_edge = min(max(p, _TRUSTED_DECADES / scores.size), _TAIL_FRACTION)
    ratio = _TAIL_FRACTION / p_edge
    if shape < 1e-6:
        edge = u + beta * float(np.log(ratio))
    else:
        edge = u + beta / shape * float(ratio**shape - 1.0)
    local_scale = beta + shape * (edge - u)
    return edge + local_scale * float(np.log(p_edge / p))


def _nanmedian(a: FloatArray) -> FloatArray:
    """Column medians of the observed values; NaN, silently, for a never-reported feature."""
    # A transmitter point has no envelope features: an all-NaN column is expected, not news.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmedian(a, axis=0), dtype=np.float64)


def _weighted_lstsq(A: FloatArray, Y: FloatArray, W: FloatArray) -> FloatArray:
    """Per-column weighted least squares (a 0 weight drops a missing value), batched."""
    # Normal equations per feature: (F, p, p) systems solved in one call.
    gram = np.einsum("nf,np,nq->fpq", W, A, A)
    rhs = np.einsum("nf,np,nf->fp", W, A, Y)
    p = A.shape[1]
    ridge = 1e-9 * (np.trace(gram, axis1=1, axis2=2)[:, None, None] / p + 1.0)
    coef = np.linalg.solve(gram + ridge * np.eye(p), rhs[..., None])[..., 0]
    return np.asarray(coef.T, dtype=np.float64)
