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


#: Models × features × rows fitted in one batch: bounds the working memory of a fit.
_BATCH_ELEMENTS = 400_000


@dataclass(frozen=True)
class _AssetFit:
    """Per-asset baselines of one batched fit and what calibration needs from it."""

    assets: NDArray[Any]  # sorted ids
    models: _Model  # stacked per asset, in ``assets`` order
    medians: FloatArray  # out-of-sample median distance (NaN: not calibrated)
    pooled: FloatArray  # out-of-sample distances over their asset's median, pooled


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
        n_features = Xv.shape[1]

        p_alarm = self.false_alarms_per_year * self.scoring_interval_s / _SECONDS_PER_YEAR
        self.p_alarm_ = min(p_alarm, 0.5)
        nominal = stats.chi2.isf(self.p_alarm_, n_features)
        # Index 0: the pooled fleet baseline, for assets unseen in fit and as a scale floor.
        pooled = self._fit_batch(Xv.T[None], cond.T[None], np.array([Xv.shape[0]]), None)
        fit = self._fit_assets(Xv, ids, cond, pooled[1][0])
        self.assets_ = fit.assets
        self.coef_, self.scale_, self.precision_, self.used_, self.corr_ = (
            np.concatenate([a, b]) for a, b in zip(pooled, fit.models, strict=True)
        )

        # Calibrate on out-of-sample scores: a model scores its own commissioning rows lower
        # than fresh windows (with ~30 rows and ~18 features, markedly so).
        ref_ratio = nominal / stats.chi2.median(n_features)
        # One asset's ~30 scores cannot show a 1e-4 tail: pool the shape over the fleet
        # (scores over their asset's median), keep the level (median) per asset.
        ratio = ref_ratio
        self.tail_shape_ = 0.0
        if fit.pooled.size >= _MIN_POOLED:
            self.tail_shape_ = _tail_shape(fit.pooled)
            ratio = max(ratio, _tail_quantile(fit.pooled, self.p_alarm_, self.tail_shape_))
        self.tail_ratio_ = float(ratio)
        d2_in, _ = self._distance(Xv, ids, cond)
        own = d2_in[np.isfinite(d2_in)]
        fleet_median = float(np.median(own)) if own.size >= 5 else np.nan
        factor = np.ones(len(fit.assets) + 1)
        threshold = np.full(len(fit.assets) + 1, nominal)
        if fleet_median > 0:  # the fleet pool has thousands of rows: its own tail is identified
            factor[0] = fleet_median / stats.chi2.median(n_features)
            tail = _tail_quantile(own, self.p_alarm_, _tail_shape(own / fleet_median))
            threshold[0] = max(factor[0] * nominal, tail)
        factor[1:], threshold[1:] = self._asset_thresholds(fit.medians, nominal)
        self.consistency_ = factor
        self.threshold_ = threshold
        # Scores are distances over the asset's own threshold, so one offset serves the fleet.
        self.offset_ = -1.0
        self.labelled_history_: list[_LabelledWindow] = []
        return self

    def refit(
        self,
        X: ArrayLike,
        *,
        asset_ids: ArrayLike,
        conditions: ArrayLike | None = None,
    ) -> Self:
        """(Re)learn the baselines of the assets in ``asset_ids`` only, from all their rows.

        New assets are added, known ones replaced; every other asset keeps its fitted state.
        The fleet-level parts (pooled baseline, scale floor, tail ratio) stay those of the
        last ``fit``, so a refitted asset gets exactly the baseline and threshold a full fit
        with the same fleet statistics would give it. Thresholds that verdicts raised are
        reset for the refitted assets: replay their verdicts afterwards.
        """
        check_is_fitted(self)
        Xv = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64, reset=False)
        if asset_ids is None:
            raise ValueError("refit needs asset_ids")
        ids = self._ids(asset_ids, Xv.shape[0])
        cond = self._design(conditions, Xv.shape[0])
        if cond.shape[1] - 1 != self.n_conditions_:
            raise ValueError(
                f"refit got {cond.shape[1] - 1} condition columns, fit had {self.n_conditions_}"
            )
        fit = self._fit_assets(Xv, ids, cond, self.scale_[0])
        nominal = stats.chi2.isf(self.p_alarm_, Xv.shape[1])
        factor, threshold = self._asset_thresholds(fit.medians, nominal)

        assets = np.union1d(self.assets_, fit.assets)
        old = np.r_[0, np.searchsorted(assets, self.assets_) + 1]
        new = np.searchsorted(assets, fit.assets) + 1
        fitted = (self.coef_, self.scale_, self.precision_, self.used_, self.corr_)
        merged: list[NDArray[Any]] = []
        for before, refitted in zip(
            (*fitted, self.consistency_, self.threshold_), (*fit.models, factor, threshold),
            strict=True,
        ):
            out = np.empty((assets.size + 1, *before.shape[1:]), dtype=before.dtype)
            out[old] = before
            out[new] = refitted
            merged.append(out)
        self.assets_ = assets
        (self.coef_, self.scale_, self.precision_, self.used_, self.corr_,
         self.consistency_, self.threshold_) = merged
        return self

    def _asset_thresholds(
        self, medians: FloatArray, nominal: float
    ) -> tuple[FloatArray, FloatArray]:
        """Consistency factor and threshold per asset from its out-of-sample median."""
        n_features = self.n_features_in_
        ok = np.isfinite(medians)
        factor = np.where(ok, medians / stats.chi2.median(n_features), 1.0)
        threshold = np.where(ok, medians * self.tail_ratio_, nominal)
        return factor, threshold

    def _fit_assets(
        self, X: FloatArray, ids: NDArray[Any], cond: FloatArray, fleet_scale: FloatArray
    ) -> _AssetFit:
        """Every asset's baseline and its out-of-sample calibration scores, in batches.

        Rows are grouped once (a stable sort by asset); assets of similar size are padded
        with NaN into (models, features, rows) blocks, so one vectorised fit serves a batch
        of assets and all their leave-one-out folds.
        """
        assets, inverse = np.unique(ids, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")
        Xs, Cs = X[order], cond[order]
        counts = np.bincount(inverse, minlength=assets.size)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        n_features, p = X.shape[1], cond.shape[1]
        models = (
            np.empty((assets.size, p, n_features)),
            np.empty((assets.size, n_features)),
            np.empty((assets.size, n_features, n_features)),
            np.empty((assets.size, n_features), dtype=np.bool_),
            np.empty((assets.size, n_features, n_features)),
        )
        d2_out = np.full(Xs.shape[0], np.nan)
        medians = np.full(assets.size, np.nan)
        by_size = np.argsort(counts, kind="stable")
        sizes = counts[by_size]
        # Assets per block so that block × its largest asset's rows stays within budget.
        room = max(1, _BATCH_ELEMENTS // (n_features * (_CV_FOLDS + 1)))
        done = 0
        while done < assets.size:
            ahead = sizes[done : done + room]
            cost = np.arange(1, ahead.size + 1) * np.maximum(ahead, 1)  # ascending
            batch = max(1, int(np.searchsorted(cost, room, side="right")))
            ks = by_size[done : done + batch]
            n_max = int(sizes[done + batch - 1])
            done += ks.size
            rows = starts[ks, None] + np.arange(n_max)
            real = np.arange(n_max) < counts[ks, None]
            rows = np.where(real, rows, 0)
            Xa = np.where(real[..., None], Xs[rows], np.nan).transpose(0, 2, 1)
            Ca = np.where(real[..., None], Cs[rows], 0.0).transpose(0, 2, 1)
            fitted = self._fit_batch(Xa, Ca, counts[ks], fleet_scale)
            for whole, part in zip(models, fitted, strict=True):
                whole[ks] = part
            d2, calibrated = self._fold_scores(Xa, Ca, counts[ks], fleet_scale)
            if calibrated.any():
                kc = ks[calibrated]
                d2 = d2[calibrated]
                d2_out[rows[calibrated][real[calibrated]]] = d2[real[calibrated]]
                finite = np.where(np.isfinite(d2), d2, np.nan)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    med = _nanmedian_last(finite[:, None, :])[:, 0]
                enough = np.isfinite(finite).sum(axis=1) >= 5
                medians[kc] = np.where(enough & (med > 0), med, np.nan)
        # Pooled shape: every calibrated asset's scores over its median, in asset order.
        row_median = np.repeat(medians, counts)
        keep = np.isfinite(row_median) & np.isfinite(d2_out)
        pooled = d2_out[keep] / row_median[keep]
        return _AssetFit(assets, models, medians, pooled)

    def _fold_scores(
        self, Xa: FloatArray, Ca: FloatArray, counts: NDArray[np.intp], fleet_scale: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Each row's distance under its asset's model fitted without its fold.

        Folds are interleaved (row r is in fold r mod J): neighbouring windows are
        correlated. Assets with fewer than 5 rows are not calibrated (second value False).
        """
        G, _, n = Xa.shape
        calibrated = counts >= 5
        d2 = np.full((G, n), np.nan)
        if not calibrated.any():
            return d2, calibrated
        g_cal = np.flatnonzero(calibrated)
        n_folds = np.minimum(counts[g_cal], _CV_FOLDS)
        g_of = np.repeat(g_cal, n_folds)  # one model per (asset, fold)
        j_of = np.arange(g_of.size) - np.repeat(np.cumsum(n_folds) - n_folds, n_folds)
        r = np.arange(n)
        fold_of_row = r[None, :] % np.repeat(n_folds, n_folds)[:, None]
        held = (fold_of_row == j_of[:, None]) & (r[None, :] < counts[g_of, None])
        Xf = np.where(held[:, None, :], np.nan, Xa[g_of])
        Cf = np.where(held[:, None, :], 0.0, Ca[g_of])
        nrows = counts[g_of] - held.sum(axis=1)
        stacked = self._fit_batch(Xf, Cf, nrows, fleet_scale)
        # Row r of asset g is scored by model (g, r mod J_g): local index first_g + r mod J_g.
        first = np.zeros(G, dtype=np.intp)
        first[g_cal] = np.cumsum(n_folds) - n_folds
        folds = np.zeros(G, dtype=np.intp)
        folds[g_cal] = n_folds
        real = calibrated[:, None] & (r[None, :] < counts[:, None])
        gg, rr = np.nonzero(real)
        model = first[gg] + rr % folds[gg]
        d2_rows, _ = _distance(Xa[gg, :, rr], model, Ca[gg, :, rr], stacked)
        d2[gg, rr] = d2_rows
        return d2, calibrated

    def _fit_batch(
        self,
        X: FloatArray,
        cond: FloatArray,
        nrows: NDArray[np.intp],
        fleet_scale: FloatArray | None,
    ) -> _Model:
        """Fit M baselines at once: ``X`` is (M, F, n) with NaN for missing or padded rows,
        ``cond`` (M, p, n) the design (any finite value on padded rows), ``nrows`` the real
        row count of each model."""
        M, n_features, _ = X.shape
        p = cond.shape[1]
        obs = np.isfinite(X)
        Xz = np.where(obs, X, 0.0)
        if p == 1:
            coef = _nanmedian_last(X)[:, None, :]
        else:
            coef = _weighted_lstsq(cond, Xz, obs)
            # One robust re-weighting pass: commissioning data have their own outliers.
            resid = np.where(obs, X - _predict(cond, coef), np.nan)
            mad = _MAD_TO_SIGMA * _nanmedian_last(np.abs(resid))
            keep = obs & (np.abs(resid) <= 3.5 * np.where(mad > 0, mad, np.inf)[..., None])
            coef = _weighted_lstsq(cond, Xz, keep)
        coef = np.where(np.isfinite(coef), coef, 0.0)
        resid = np.where(obs, X - _predict(cond, coef), np.nan)
        used = obs.any(axis=2)
        mad = _MAD_TO_SIGMA * _nanmedian_last(np.abs(resid))
        mad = np.where(np.isfinite(mad), mad, 0.0)
        floor_ref = mad if fleet_scale is None else fleet_scale[None, :]
        floor = np.maximum(self.min_scale_fraction * floor_ref, 1e-12)
        # A sensor's resolution bounds how small a spread can be real: a transmitter that
        # reports 0.1 degC steps and sat on one value during commissioning must not alarm
        # on its next quantum. Unknown resolution (one constant value) falls back to a
        # small share of the level.
        quantum = _resolution(X)
        constant = (quantum == 0.0) & (mad == 0.0)
        level = np.abs(coef[:, 0, :])
        scale = np.maximum.reduce(
            [mad, np.broadcast_to(floor, mad.shape), quantum,
             np.where(constant, _CONSTANT_LEVEL_SHARE * level, 0.0)]
        )
        z = np.clip(np.where(obs, resid / scale[..., None], 0.0), -4.0, 4.0)
        corr = (z @ z.transpose(0, 2, 1)) / np.maximum(nrows, 1)[:, None, None]
        sd = np.sqrt(np.diagonal(corr, axis1=1, axis2=2))
        sd = np.where(sd > 0, sd, 1.0)
        corr = corr / (sd[:, :, None] * sd[:, None, :])
        if self.shrinkage is None:
            alpha = np.clip(n_features / (nrows + n_features), 0.05, 1.0)
        else:
            alpha = np.full(M, float(self.shrinkage))
        eye = np.eye(n_features)
        corr = (1.0 - alpha)[:, None, None] * corr + alpha[:, None, None] * eye
        corr[:, eye.astype(bool)] = 1.0
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
    if starts.size * _SEGMENT_ROWS > n:
        # Many small groups (one row per asset in a scoring round, a fold's held-out rows):
        # gather each row's model instead of a Python step per group.
        for lo in range(0, n, _ROW_BLOCK):
            rows = slice(lo, lo + _ROW_BLOCK)
            a = sidx[rows]
            zb = (Xs[rows] - np.einsum("np,npf->nf", Cs[rows], coef[a])) / scale[a]
            z[rows] = zb
            d2[rows] = np.einsum("nf,nf->n", (zb[:, None, :] @ precision[a])[:, 0, :], zb)
    else:
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


#: Groups smaller than this on average are scored row by row (gathered), not group by group.
_SEGMENT_ROWS = 16
#: Rows gathered at once: bounds the memory of the per-row model parameters.
_ROW_BLOCK = 4096

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
    """Per model and column of (M, F, n), the smallest step between distinct observed
    values (0 if fewer than two)."""
    if X.shape[-1] < 2:
        return np.zeros(X.shape[:-1])
    steps = np.diff(np.sort(X, axis=-1), axis=-1)  # NaN sort last and give NaN steps
    steps = np.where(np.isfinite(steps) & (steps > 0), steps, np.inf)
    smallest = steps.min(axis=-1)
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


#: Above this many rows a model's medians use numpy's selection instead of a full sort.
_SELECT_ROWS = 4096


def _nanmedian_last(a: FloatArray) -> FloatArray:
    """Medians over the last axis of the observed values; NaN for a never-reported feature.

    Small blocks (a batch of asset and fold models) are sorted in one call, NaN last, and
    the middle of each row's observed values taken: the same values np.nanmedian picks.
    """
    if a.shape[-1] > _SELECT_ROWS:
        # A transmitter point has no envelope features: an all-NaN row is expected.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.asarray(np.nanmedian(a, axis=-1), dtype=np.float64)
    s = np.sort(a, axis=-1)
    count = np.isfinite(a).sum(axis=-1)
    lo = np.maximum((count - 1) // 2, 0)[..., None]
    hi = np.maximum(count // 2, 0)
    hi = np.minimum(hi, a.shape[-1] - 1)[..., None]
    mid = (np.take_along_axis(s, lo, axis=-1) + np.take_along_axis(s, hi, axis=-1))[..., 0] / 2
    return np.asarray(np.where(count > 0, mid, np.nan), dtype=np.float64)


def _predict(cond: FloatArray, coef: FloatArray) -> FloatArray:
    """Condition-explained part of each row: (M, p, n) design × (M, p, F) → (M, F, n)."""
    # A sum over the few design columns: faster than a batch of tiny matrix products.
    out = coef[:, 0, :, None] * cond[:, 0, None, :]
    for k in range(1, cond.shape[1]):
        out += coef[:, k, :, None] * cond[:, k, None, :]
    return out


def _weighted_lstsq(A: FloatArray, Y: FloatArray, W: NDArray[Any]) -> FloatArray:
    """Per model and column weighted least squares (a 0 weight drops a missing value).

    ``A`` is (M, p, n), ``Y`` and ``W`` (M, F, n); returns (M, p, F). Normal equations per
    feature: (M, F, p, p) systems solved at once.
    """
    M, p, n = A.shape
    Wf = W.astype(np.float64, copy=False)
    pairs = [(i, j) for i in range(p) for j in range(i, p)]
    # Products of design columns once per model, then one matmul per model for every feature.
    products = np.empty((M, n, len(pairs)))
    for k, (i, j) in enumerate(pairs):
        np.multiply(A[:, i, :], A[:, j, :], out=products[:, :, k])
    upper = Wf @ products  # (M, F, pairs)
    gram = np.empty((M, Wf.shape[1], p, p))
    for k, (i, j) in enumerate(pairs):
        gram[..., i, j] = gram[..., j, i] = upper[..., k]
    rhs = (Wf * Y) @ A.transpose(0, 2, 1)  # (M, F, p)
    ridge = 1e-9 * (np.trace(gram, axis1=2, axis2=3)[..., None, None] / p + 1.0)
    gram = gram + ridge * np.eye(p)
    if p == 2:  # one condition (speed), the usual case: Cramer's rule, no LAPACK call per system
        g00, g01, g11 = gram[..., 0, 0], gram[..., 0, 1], gram[..., 1, 1]
        det = g00 * g11 - g01 * g01
        coef = np.stack(
            [(g11 * rhs[..., 0] - g01 * rhs[..., 1]) / det,
             (g00 * rhs[..., 1] - g01 * rhs[..., 0]) / det],
            axis=-1,
        )
    else:
        coef = np.linalg.solve(gram, rhs[..., None])[..., 0]
    return np.asarray(coef.transpose(0, 2, 1), dtype=np.float64)
