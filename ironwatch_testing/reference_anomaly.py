"""The per-asset fit that ``FleetBaseline.fit`` replaced, kept as its reference.

One mask per asset and one fit per leave-one-out fold: slow (quadratic in the fleet), but
plainly right. The tests check that the vectorised fit gives the same baselines and
thresholds, and ``bench/fleet_fit.py`` times both in the same run.
"""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from sklearn.utils.validation import validate_data

from models.anomaly import (
    _CONSTANT_LEVEL_SHARE,
    _CV_FOLDS,
    _MAD_TO_SIGMA,
    _MIN_POOLED,
    _SECONDS_PER_YEAR,
    FleetBaseline,
    _distance,
    _LabelledWindow,
    _tail_quantile,
    _tail_shape,
)

__all__ = ["ReferenceFleetBaseline"]

FloatArray = NDArray[np.float64]
_Model = tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_], FloatArray]


class ReferenceFleetBaseline(FleetBaseline):
    """``FleetBaseline`` fitted one asset and one fold at a time (slow, obviously right)."""

    def fit(
        self,
        X: ArrayLike,
        y: None = None,
        *,
        asset_ids: ArrayLike | None = None,
        conditions: ArrayLike | None = None,
    ) -> Self:
        if self.false_alarms_per_year <= 0 or self.scoring_interval_s <= 0:
            raise ValueError("false_alarms_per_year and scoring_interval_s must be > 0")
        Xv = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        ids = self._ids(asset_ids, Xv.shape[0])
        cond = self._design(conditions, Xv.shape[0])
        self.n_conditions_ = cond.shape[1] - 1

        assets = np.unique(ids)
        models = [self._ref_fit_one(Xv, cond, None)]
        models += [self._ref_fit_one(Xv[ids == a], cond[ids == a], models[0][1]) for a in assets]
        self.assets_ = assets
        self.coef_ = np.stack([m[0] for m in models])
        self.scale_ = np.stack([m[1] for m in models])
        self.precision_ = np.stack([m[2] for m in models])
        self.used_ = np.stack([m[3] for m in models])
        self.corr_ = np.stack([m[4] for m in models])

        p_alarm = self.false_alarms_per_year * self.scoring_interval_s / _SECONDS_PER_YEAR
        self.p_alarm_ = min(p_alarm, 0.5)
        n_features = Xv.shape[1]
        nominal = stats.chi2.isf(self.p_alarm_, n_features)
        ref_ratio = nominal / stats.chi2.median(n_features)
        d2_in, _ = self._distance(Xv, ids, cond)
        d2_out = self._ref_out_of_sample(Xv, ids, cond, models)
        idx = self._index(ids)
        factor = np.ones(len(models))
        threshold = np.full(len(models), nominal)
        own = [d2_in[np.isfinite(d2_in)]]
        own += [d2_out[(idx == k) & np.isfinite(d2_out)] for k in range(1, len(models))]
        medians = np.array([float(np.median(o)) if o.size >= 5 else np.nan for o in own])
        medians = np.where(medians > 0, medians, np.nan)
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
            if k == 0:
                tail = _tail_quantile(own[0], self.p_alarm_, _tail_shape(own[0] / medians[0]))
                threshold[k] = max(factor[k] * nominal, tail)
            else:
                threshold[k] = medians[k] * ratio
        self.consistency_ = factor
        self.threshold_ = threshold
        self.tail_ratio_ = float(ratio)
        self.offset_ = -1.0
        self.labelled_history_: list[_LabelledWindow] = []
        return self

    def _ref_out_of_sample(
        self, X: FloatArray, ids: NDArray[Any], cond: FloatArray, models: list[_Model]
    ) -> FloatArray:
        idx = self._index(ids)
        row_model = idx.copy()
        folds: list[_Model] = []
        for k in range(1, len(models)):
            rows = np.flatnonzero(idx == k)
            if rows.size < 5:
                continue
            n_folds = min(rows.size, _CV_FOLDS)
            fold = np.arange(rows.size) % n_folds
            for j in range(n_folds):
                train = rows[fold != j]
                folds.append(self._ref_fit_one(X[train], cond[train], models[0][1]))
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

    def _ref_fit_one(
        self, X: FloatArray, cond: FloatArray, fleet_scale: FloatArray | None
    ) -> _Model:
        n, n_features = X.shape
        p = cond.shape[1]
        obs = np.isfinite(X)
        Xz = np.where(obs, X, 0.0)
        w = obs.astype(np.float64)
        if p == 1:
            coef = _nanmedian(np.where(obs, X, np.nan))[None, :]
        else:
            coef = _weighted_lstsq(cond, Xz, w)
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


def _resolution(X: FloatArray) -> FloatArray:
    if X.shape[0] < 2:
        return np.zeros(X.shape[1])
    steps = np.diff(np.sort(X, axis=0), axis=0)
    steps = np.where(np.isfinite(steps) & (steps > 0), steps, np.inf)
    smallest = steps.min(axis=0)
    return np.where(np.isfinite(smallest), smallest, 0.0)


def _nanmedian(a: FloatArray) -> FloatArray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmedian(a, axis=0), dtype=np.float64)


def _weighted_lstsq(A: FloatArray, Y: FloatArray, W: FloatArray) -> FloatArray:
    gram = np.einsum("nf,np,nq->fpq", W, A, A)
    rhs = np.einsum("nf,np,nf->fp", W, A, Y)
    p = A.shape[1]
    ridge = 1e-9 * (np.trace(gram, axis1=1, axis2=2)[:, None, None] / p + 1.0)
    coef = np.linalg.solve(gram + ridge * np.eye(p), rhs[..., None])[..., 0]
    return np.asarray(coef.T, dtype=np.float64)

