"""The pipeline's view of `models/`: fit and score the anomaly detector, diagnose, estimate RUL.

Only glue lives here (shapes, keys, asset physics, caching); every decision about
what is anomalous, which fault it is and how long is left is made in `models/`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, Self

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

from cloud.domain.vocabulary import IsoZone
from cloud.pipeline._assessment import Assessment, AssetView
from cloud.pipeline._state import align_columns
from ironwatch.physics import AssetPhysics, iso_class, rpm_to_hz
from models.diagnosis import ISO_10816_3_BOUNDARIES_MMS, Diagnosis, diagnose, iso_zone

if TYPE_CHECKING:
    from cloud.pipeline._state import Baseline
    from ironwatch.wire import WaveformSnapshot
    from models.anomaly import Verdict

__all__ = ["AnomalyDetector", "ModelSuite", "SnapshotLookup", "is_trended"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.str_]
SnapshotLookup = Callable[[str, str | None], "WaveformSnapshot | None"]
UNKNOWN_MODE = "unknown_anomaly"
# Operating condition, not health: the detector regresses features on these.
CONDITION_FEATURES = ("speed_rpm", "load_pct")
# Calibration of the detector: at most about one false window-level alarm per asset-year
# at one window per minute; the k-of-n persistence rule lowers alert false alarms further.
FALSE_ALARMS_PER_YEAR = 1.0
WINDOW_SPACING_S = 60.0
# Transmitters report quantised values (0.1 °C, 0.01 mm/s): a steady machine can show a
# commissioning spread of zero, and one quantum would then count as dozens of sigmas.
# A per-point scale of at least 5 % of the fleet's spread keeps that from alarming.
MIN_SCALE_FRACTION = 0.05
# RUL needs a trend: at least this many readings, starting a little before onset.
RUL_MIN_POINTS = 5
RUL_LEAD_IN_S = 300.0
# Quantiles later than this are reported as "beyond horizon" (None), not as a date.
RUL_HORIZON_H = 24.0 * 365.0
VELOCITY = "velocity_rms_mms"
# Level features whose history is kept for choosing the RUL health indicator; shape
# features (kurtosis, crest factor) do not grow steadily with wear.
TRENDED_PREFIXES = ("band_", "accel_rms_ms2", VELOCITY, "env_")
# A snapshot taken this long before onset still shows the fault developing.
SNAPSHOT_LEAD_IN_S = 60.0
# An unsure diagnosis (below this confidence) asks for a new waveform this often.
SURE_DIAGNOSIS = 0.5
SNAPSHOT_REFRESH_S = 60.0
# Strongest envelope line families shown in the evidence.
LINE_FAMILIES_SHOWN = 3
# Version of the anomaly model code, stored on alerts with the baseline version.
ANOMALY_CODE_VERSION = "1"
_VERDICTS: dict[str, Verdict] = {"false_alarm": "false_alarm", "confirmed": "confirmed_fault"}
_ISO_ZONES: dict[str, IsoZone] = {"A": "A", "B": "B", "C": "C", "D": "D"}
_MAD_TO_SIGMA = 1.4826


class AnomalyDetector(Protocol):
    """What the suite asks of a fleet anomaly detector (`models.anomaly.FleetBaseline`)."""

    def fit(
        self, X: ArrayLike, y: None = None, *, asset_ids: ArrayLike | None = None,
        conditions: ArrayLike | None = None,
    ) -> Self: ...

    def refit(
        self, X: ArrayLike, *, asset_ids: ArrayLike, conditions: ArrayLike | None = None,
    ) -> Self: ...

    def score_samples(
        self, X: ArrayLike, *, asset_ids: ArrayLike | None = None,
        conditions: ArrayLike | None = None,
    ) -> FloatArray: ...

    def decision_function(
        self, X: ArrayLike, *, asset_ids: ArrayLike | None = None,
        conditions: ArrayLike | None = None,
    ) -> FloatArray: ...

    def apply_verdict(
        self, asset_id: str, verdict: Verdict, X_window: ArrayLike, *,
        conditions: ArrayLike | None = None, margin: float = 1.1,
    ) -> float: ...


def fleet_baseline(window_spacing_s: float = WINDOW_SPACING_S) -> AnomalyDetector:
    """The fleet detector of `models.anomaly`, calibrated for the pipeline's window spacing."""
    # Imported here: scikit-learn takes a while to load and only scoring needs it.
    from models.anomaly import FleetBaseline

    detector: AnomalyDetector = FleetBaseline(
        false_alarms_per_year=FALSE_ALARMS_PER_YEAR,
        scoring_interval_s=window_spacing_s,
        min_scale_fraction=MIN_SCALE_FRACTION,
    )
    return detector


def robust_z(x: FloatArray, keys: StrArray, baseline: Baseline) -> FloatArray:
    """Per-feature robust z-score of each row against its own key's baseline (for evidence)."""
    unique, inverse = np.unique(keys, return_inverse=True)
    med = np.vstack([baseline.median_array(str(k)) for k in unique])
    mad = np.vstack([baseline.mad_array(str(k)) for k in unique])
    scale = np.where(mad > 0, mad * _MAD_TO_SIGMA, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x - med[inverse]) / scale[inverse]


class ModelSuite:
    """Anomaly detector per (asset, point), diagnosis and RUL from `models/`.

    RUL quantiles later than `rul_horizon_h` are reported as beyond horizon (None).
    """

    def __init__(
        self,
        snapshots: SnapshotLookup | None = None,
        *,
        detector_factory: Callable[[float], AnomalyDetector] = fleet_baseline,
        rul_horizon_h: float = RUL_HORIZON_H,
    ) -> None:
        if not rul_horizon_h > 0:
            raise ValueError(f"rul_horizon_h must be > 0, got {rul_horizon_h!r}")
        self.snapshots = snapshots
        self.rul_horizon_h = float(rul_horizon_h)
        self._detector_factory = detector_factory
        self._detector: AnomalyDetector | None = None
        #: Window spacing (capture time, s) the detector was last calibrated for.
        self.window_spacing_s = WINDOW_SPACING_S
        self._feature_names: list[str] = []
        self._conditions: list[str] = []
        self._diagnosis_cache: dict[tuple[str, str, float], Diagnosis | None] = {}
        self._last_snapshot_ts: dict[tuple[str, str], float] = {}

    # -- anomaly -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "ironwatch.anomaly"

    @property
    def fitted(self) -> bool:
        return self._detector is not None

    def version_for(self, baseline_version: int) -> str:
        """Model version as stored on alerts: code version plus baseline version."""
        return f"{ANOMALY_CODE_VERSION}+baseline.{baseline_version}"

    def describe(self) -> dict[str, str | None]:
        return {
            "anomaly": type(self._detector).__name__ if self._detector is not None else None,
            "diagnosis": "models.diagnosis",
            "rul": "models.rul",
        }

    @property
    def feature_names(self) -> list[str]:
        """The columns the fitted detector expects, in order."""
        return list(self._feature_names)

    def fit(
        self, x: FloatArray, keys: StrArray, feature_names: Sequence[str], *,
        window_spacing_s: float | None = None,
    ) -> None:
        """Fit the detector on every key's commissioning rows (each key its own baseline).

        Operating-condition columns (speed, load) become the detector's `conditions`, so a
        machine running faster is not mistaken for a machine vibrating more.
        """
        names = list(feature_names)
        self._conditions = [c for c in CONDITION_FEATURES if c in names]
        self._feature_names = [n for n in names if n not in self._conditions]
        xf, cond = self._split(x, names, keys)
        # The false-alarm budget is per year; per window it depends on how often a point
        # reports, measured in capture time over commissioning (one a minute if unknown).
        spacing = window_spacing_s if window_spacing_s and window_spacing_s > 0 else (
            WINDOW_SPACING_S)
        detector = self._detector_factory(spacing)
        self.window_spacing_s = spacing
        with warnings.catch_warnings():
            # A point that never reports a feature (a Modbus transmitter has no envelope
            # values) gives an all-NaN column; the detector then ignores that feature for
            # the point, which is what is wanted, but numpy warns on the way.
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            detector.fit(xf, asset_ids=keys, conditions=cond)
        self._detector = detector

    def can_refit(self, feature_names: Sequence[str]) -> bool:
        """Whether `refit` can take rows with these columns (the fitted ones, no new ones)."""
        if self._detector is None:
            return False
        names = list(feature_names)
        conditions = [c for c in CONDITION_FEATURES if c in names]
        return conditions == self._conditions and (
            [n for n in names if n not in conditions] == self._feature_names)

    def refit(self, x: FloatArray, keys: StrArray, feature_names: Sequence[str]) -> None:
        """Fit only these keys' baselines; every other key keeps its fitted state.

        The fleet statistics (pooled baseline, scale floor, tail shape) stay those of the
        last `fit`, so commissioning one machine costs that machine's fit, not the fleet's.
        """
        if self._detector is None or not self.can_refit(feature_names):
            raise ValueError("refit needs a detector fitted on the same features")
        xf, cond = self._split(x, list(feature_names), keys)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            self._detector.refit(xf, asset_ids=keys, conditions=cond)

    def _split(
        self, x: FloatArray, names: Sequence[str], keys: StrArray
    ) -> tuple[FloatArray, FloatArray | None]:
        xf = align_columns(x, list(names), self._feature_names)
        if not self._conditions:
            return xf, None
        cond = align_columns(x, list(names), self._conditions)
        # The detector needs finite conditions: a missing speed reading takes the key's
        # commissioning median (the machine's usual condition), else 0 (no effect fitted).
        fill = self._condition_fill(keys, cond)
        return xf, np.where(np.isfinite(cond), cond, fill)

    def _condition_fill(self, keys: StrArray, cond: FloatArray) -> FloatArray:
        """Per key and column, the median of its finite values (0 if none): one sort."""
        fill = np.zeros_like(cond)
        missing = ~np.isfinite(cond)
        if not missing.any():
            return fill
        _, inverse = np.unique(keys, return_inverse=True)
        inverse = inverse.ravel()
        counts = np.bincount(inverse)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        for j in range(cond.shape[1]):
            if not missing[:, j].any():
                continue
            col = cond[:, j]
            # Rows grouped by key, each group's values ascending with NaN last.
            order = np.lexsort((col, inverse))
            ordered = col[order]
            finite = np.bincount(inverse, weights=np.isfinite(col), minlength=len(counts))
            finite = finite.astype(np.intp)
            lo = starts + np.maximum((finite - 1) // 2, 0)
            hi = starts + np.maximum(finite // 2, 0)
            lo, hi = np.minimum(lo, len(col) - 1), np.minimum(hi, len(col) - 1)
            med = np.where(finite > 0, (ordered[lo] + ordered[hi]) / 2.0, 0.0)
            fill[:, j] = med[inverse]
        return fill

    def score(
        self, x: FloatArray, names: Sequence[str], keys: StrArray
    ) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Anomaly ratio (≥ 1 = over the key's calibrated threshold) and flag, per row."""
        assert self._detector is not None
        xf, cond = self._split(x, names, keys)
        decision = np.asarray(
            self._detector.decision_function(xf, asset_ids=keys, conditions=cond),
            dtype=np.float64,
        )
        score_samples = np.asarray(
            self._detector.score_samples(xf, asset_ids=keys, conditions=cond), dtype=np.float64
        )
        # decision = threshold - d², score_samples = -d², so d² / threshold is the ratio.
        d2 = -score_samples
        threshold = decision + d2
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(threshold > 0, d2 / threshold, np.nan)
        over = np.nan_to_num(decision, nan=1.0) < 0
        return ratio, over

    def feature_z(self, x: FloatArray, keys: StrArray, baseline: Baseline) -> FloatArray:
        return robust_z(x, keys, baseline)

    def apply_verdict(self, key: str, verdict: str, x: FloatArray, names: Sequence[str]) -> bool:
        """Tell the detector an engineer judged these rows of `key` (false alarm / confirmed)."""
        model_verdict = _VERDICTS.get(verdict)
        if self._detector is None or model_verdict is None or not len(x):
            return False
        keys = np.full(len(x), key)
        xf, cond = self._split(x, names, keys)
        try:
            self._detector.apply_verdict(key, model_verdict, xf, conditions=cond)
        except ValueError as err:
            log.warning("verdict on %s not applied: %s", key, err)
            return False
        return True

    # -- diagnosis and prognosis ---------------------------------------------------------------
    def assess(
        self, views: Sequence[AssetView], physics: dict[str, AssetPhysics | None]
    ) -> dict[str, Assessment]:
        """Health assessment and RUL for each asset with a raised (persistent) anomaly."""
        out: dict[str, Assessment] = {}
        for view in views:
            lead = view.lead()
            if not lead.raised:
                continue
            phys = physics.get(view.asset_id)
            a = Assessment(asset_id=view.asset_id, lead=lead, failure_mode=UNKNOWN_MODE,
                           score=lead.score)
            self._diagnose(a, phys)
            self._rul(a, phys)
            out[view.asset_id] = a
        return out

    def _diagnose(self, a: Assessment, phys: AssetPhysics | None) -> None:
        velocity = a.lead.latest.get("velocity_rms_mms", math.nan)
        try:
            zone = str(iso_zone(velocity, *iso_class(phys)))
        except ValueError:
            zone = ""
        a.iso_zone = _ISO_ZONES.get(zone)
        diagnosis = self._snapshot_diagnosis(a, phys)
        if diagnosis is None:
            return
        fault = str(diagnosis.fault.value)
        a.diagnosis = {
            "source": "waveform_snapshot",
            "snapshot_ts_s": self._last_snapshot_ts.get((a.asset_id, a.lead.point)),
            "fault": fault,
            "confidence": round(float(diagnosis.confidence), 3),
            "failure_mode_code": diagnosis.failure_mode_code,
            "failure_mechanism_code": diagnosis.failure_mechanism_code,
            # What the call rests on: speed used, health margin, level against commissioning.
            "measurements": {k: _round(v) for k, v in diagnosis.evidence.items()},
            "findings": [
                {"fault": f.fault.value, "confidence": round(f.confidence, 3)}
                for f in diagnosis.findings
            ],
        }
        a.peaks = [
            {"fault": f.fault.value, **{k: _round(v) for k, v in f.evidence.items()
                                        if k.startswith(("peak_", "ratio_"))}}
            for f in diagnosis.findings
        ]
        if diagnosis.line_families:
            # Orders of the shaft speed: what an engineer reads an unexplained signal by.
            a.diagnosis["line_families"] = [
                {"order": _round(f.order), "fundamental_hz": _round(f.fundamental_hz),
                 "score": _round(f.score)}
                for f in diagnosis.line_families[:LINE_FAMILIES_SHOWN]
            ]
        if fault != "none":
            a.failure_mode = fault
            a.confidence = float(diagnosis.confidence)
        if fault == "none" or diagnosis.confidence < SURE_DIAGNOSIS:
            # A fault is clearer in a later waveform: ask again once this one is old enough.
            snap_ts = float(a.diagnosis.get("snapshot_ts_s", math.nan))
            latest = float(a.lead.hi_t_s[-1]) if len(a.lead.hi_t_s) else math.nan
            a.wants_newer_snapshot = not latest - snap_ts < SNAPSHOT_REFRESH_S

    def _snapshot_diagnosis(
        self, a: Assessment, phys: AssetPhysics | None
    ) -> Diagnosis | None:
        """Diagnose the latest raw snapshot of the lead point; cached per snapshot."""
        if self.snapshots is None:
            a.needs_snapshot = True
            return None
        point = a.lead.point
        snap = self.snapshots(a.asset_id, point)
        onset = a.lead.onset_s
        if snap is None or (onset is not None and snap.ts.timestamp() < onset - SNAPSHOT_LEAD_IN_S):
            # A waveform from before the anomaly shows the healthy machine: ask for a new one.
            a.needs_snapshot = True
            return None
        self._last_snapshot_ts[(a.asset_id, point)] = snap.ts.timestamp()
        cache_key = (a.asset_id, point, snap.ts.timestamp())
        if cache_key in self._diagnosis_cache:
            return self._diagnosis_cache[cache_key]
        speed_rpm = snap.speed_rpm or (phys.speed_rpm if phys is not None else None)
        if not speed_rpm:
            return None
        bearing = phys.bearing_at(point) if phys is not None else None
        group, foundation = iso_class(phys)
        result: Diagnosis | None
        try:
            result = diagnose(
                np.asarray(snap.samples(), dtype=np.float64), snap.sample_rate_hz,
                shaft_hz=rpm_to_hz(speed_rpm),
                bearing=bearing.geometry() if bearing is not None else None,
                machine_group=group, foundation=foundation,
                baseline_rms_ms2=_positive(a.lead.baseline_median.get("accel_rms_ms2")),
            )
        except ValueError as err:
            log.warning("diagnosis of %s/%s snapshot failed: %s", a.asset_id, point, err)
            result = None
        self._diagnosis_cache[cache_key] = result
        return result

    def _rul(self, a: Assessment, phys: AssetPhysics | None) -> None:
        """RUL in hours of the feature that moved most, extrapolated to its failure level.

        The health indicator is chosen per asset (`models.rul.choose_health_indicator`):
        velocity toward the ISO zone C/D limit when it moved most, else the band energy,
        overall acceleration or defect envelope that did, toward ten times its healthy
        level. P90 beyond the horizon is kept as open-ended (None), not dropped.
        """
        lead = a.lead
        boundaries = ISO_10816_3_BOUNDARIES_MMS.get(iso_class(phys))
        velocity_limit = float(boundaries[2]) if boundaries is not None else None
        # Include a few windows before onset: they anchor the healthy level of the fit.
        since = (lead.onset_s if lead.onset_s is not None else -math.inf) - RUL_LEAD_IN_S
        # Imported here: scikit-learn takes a while to load and only scoring needs it.
        from models.rul import ExponentialDegradation, choose_health_indicator

        recent_from = lead.onset_s if lead.onset_s is not None else -math.inf
        # Feature histories end with the newest row of `hi_t_s` and may be shorter.
        times = {n: lead.hi_t_s[len(lead.hi_t_s) - len(v):] for n, v in lead.trend.items()
                 if 0 < len(v) <= len(lead.hi_t_s)}
        recent = {n: lead.trend[n][t >= recent_from] for n, t in times.items()}
        chosen = choose_health_indicator(
            lead.commissioning, recent, fault=a.failure_mode, velocity_limit_mms=velocity_limit
        )
        if chosen is None:
            return  # nothing moved clearly above commissioning: no trend to extrapolate
        name, phi, threshold = chosen.name, chosen.phi, chosen.threshold
        history, t_s = lead.trend[name], times[name]
        keep = (t_s >= since) & np.isfinite(history)
        if keep.sum() < RUL_MIN_POINTS:
            return
        t_h = t_s[keep] / 3600.0
        try:
            # The healthy level from commissioning: degradation is growth above it, not the
            # level itself (a flat healthy history otherwise reads as slow growth).
            model = ExponentialDegradation(
                threshold=float(threshold), phi=float(phi) if math.isfinite(phi) else None
            )
            estimate = model.fit(t_h, history[keep]).predict_rul(horizon=self.rul_horizon_h)
        except (ValueError, np.linalg.LinAlgError) as err:
            log.debug("no RUL for %s: %s", lead.key, err)
            return
        low, median = estimate.lower, estimate.median
        if not (math.isfinite(low) and math.isfinite(median)):
            # Even the likely failure lies beyond the horizon: no trend worth a date yet.
            return
        high = round(estimate.upper, 2) if not estimate.open_ended else None
        a.rul_hours = (round(low, 2), round(median, 2), high)
        a.rul_detail = {
            "health_indicator": name,
            "healthy_level": _round(float(phi)),
            "failure_level": _round(float(threshold)),
            "moved_sd": round(chosen.moved_sd, 1),
            "horizon_h": self.rul_horizon_h,
            "open_ended": estimate.open_ended,
            "probability_beyond_horizon": round(estimate.probability_beyond_horizon, 3),
        }


def is_trended(name: str) -> bool:
    """Whether a feature's history is kept as a candidate RUL health indicator."""
    return name.startswith(TRENDED_PREFIXES)


def _positive(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) and v > 0 else None


def _round(v: float) -> float | None:
    return round(float(v), 4) if math.isfinite(v) else None
