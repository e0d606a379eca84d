"""Read an alert's free-form evidence JSON into rows the pages can show.

The scoring pipeline owns the evidence shape and may grow it; this reader accepts the
common shapes (lists of dicts or name→value maps) and shows anything else verbatim,
so a new field is visible on the page before anyone writes a template for it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cloud.dashboard._labels import term
from cloud.dashboard.i18n import gettext as _

__all__ = ["Evidence", "FeatureMove", "SpectralPeak", "read_evidence"]

_FEATURE_KEYS = ("features", "moved_features", "feature_moves", "contributions", "z_scores")
_PEAK_KEYS = ("peaks", "spectral_peaks", "defect_peaks", "matched_peaks")
_THRESHOLD_KEYS = ("threshold", "score_threshold", "alarm_threshold")
# models.diagnosis names harmonics of a fault frequency: peak_2x_hz, peak_2x_ms2, ratio_2x.
_HARMONIC_KEY = re.compile(r"^peak_(\d+)x_hz$")
# Faults whose lines are read in the envelope spectrum; the others in the plain spectrum.
_ENVELOPE_FAULTS = ("bearing_outer_race", "bearing_inner_race", "bearing_ball", "bearing_cage")


@dataclass(frozen=True)
class FeatureMove:
    """A feature that moved away from the asset's healthy baseline."""

    name: str
    z: float | None
    value: float | None = None
    baseline: float | None = None
    point: str | None = None


@dataclass(frozen=True)
class SpectralPeak:
    """A spectral line the diagnosis matched to a defect or shaft order."""

    label: str
    freq_hz: float | None
    amplitude: float | None = None
    expected_hz: float | None = None
    spectrum: str | None = None
    ratio: float | None = None


@dataclass(frozen=True)
class Evidence:
    """Evidence split into what the page draws specially and the rest, shown as-is."""

    features: list[FeatureMove] = field(default_factory=list)
    peaks: list[SpectralPeak] = field(default_factory=list)
    threshold: float | None = None
    point: str | None = None
    diagnosis: dict[str, Any] = field(default_factory=dict)
    persistence: str | None = None
    models: dict[str, Any] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _first(d: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in d:
            return d[key]
    return None


def _features(raw: Any) -> list[FeatureMove]:
    out: list[FeatureMove] = []
    if isinstance(raw, Mapping):
        for name, v in raw.items():
            if isinstance(v, Mapping):
                out.append(_feature_from(dict(v, name=v.get("name", name))))
            else:
                out.append(FeatureMove(name=str(name), z=_num(v)))
    elif isinstance(raw, list):
        out.extend(_feature_from(v) for v in raw if isinstance(v, Mapping))
    # Largest departures first: that is what the engineer checks.
    return sorted(out, key=lambda m: -abs(m.z) if m.z is not None else 0.0)


def _feature_from(d: Mapping[str, Any]) -> FeatureMove:
    point = _first(d, "point")
    return FeatureMove(
        name=str(_first(d, "name", "feature") or "?"),
        z=_num(_first(d, "z", "z_score", "zscore")),
        value=_num(_first(d, "value", "current")),
        baseline=_num(_first(d, "baseline", "baseline_median", "baseline_mean", "mean")),
        point=str(point) if point is not None else None,
    )


def _peaks(raw: Any) -> list[SpectralPeak]:
    out: list[SpectralPeak] = []
    items: list[Mapping[str, Any]] = []
    if isinstance(raw, Mapping):
        items = [dict(v, label=v.get("label", k)) for k, v in raw.items() if isinstance(v, Mapping)]
    elif isinstance(raw, list):
        items = [v for v in raw if isinstance(v, Mapping)]
    for d in items:
        if "fault" in d and "label" not in d:
            out.extend(_finding_peaks(d))
            continue
        spec = _first(d, "spectrum", "kind")
        out.append(
            SpectralPeak(
                label=str(_first(d, "label", "name", "defect", "order") or "peak"),
                freq_hz=_num(_first(d, "freq_hz", "frequency_hz", "found_hz", "hz")),
                amplitude=_num(_first(d, "amplitude", "amp", "amplitude_ms2", "amp_ms2")),
                expected_hz=_num(_first(d, "expected_hz", "target_hz")),
                spectrum=str(spec) if spec is not None else None,
            )
        )
    return out


def _finding_peaks(d: Mapping[str, Any]) -> list[SpectralPeak]:
    """One row per harmonic of a diagnosis finding's fault frequency.

    A finding without lines (imbalance judged on the 2×/1× ratio) still gets a row that
    names the fault and its ratios, so the table shows every finding.
    """
    fault = str(d["fault"])
    spectrum = "envelope" if fault in _ENVELOPE_FAULTS else "spectrum"
    out: list[SpectralPeak] = []
    if not any(_HARMONIC_KEY.match(str(k)) for k in d):
        ratios = [
            f"{str(k).removeprefix('ratio_').replace('_to_', '/')} = {v:.3g}"
            for k, v in d.items()
            if str(k).startswith("ratio_") and _num(v) is not None
        ]
        label = term(fault) + (f" ({', '.join(ratios)})" if ratios else "")
        return [SpectralPeak(label=label, freq_hz=None, spectrum=spectrum)]
    for key in sorted(k for k in d if _HARMONIC_KEY.match(str(k))):
        match = _HARMONIC_KEY.match(str(key))
        assert match is not None
        k = match.group(1)
        out.append(
            SpectralPeak(
                label=f"{k}× {term(fault)}",
                freq_hz=_num(d.get(key)),
                amplitude=_num(d.get(f"peak_{k}x_ms2")),
                spectrum=spectrum,
                ratio=_num(d.get(f"ratio_{k}x")),
            )
        )
    return out


def _persistence(raw: Any) -> str | None:
    if not isinstance(raw, Mapping):
        return None
    over, of_last = raw.get("over_threshold"), raw.get("of_last")
    if over is None or of_last is None:
        return None
    needed = raw.get("needed")
    text = _("%(over)s of the last %(of_last)s windows over threshold") % {
        "over": over,
        "of_last": of_last,
    }
    if needed is not None:
        text += " " + _("(%(needed)s needed)") % {"needed": needed}
    return text


def read_evidence(evidence: Mapping[str, Any] | None) -> Evidence:
    """Split evidence into moved features, matched peaks, the threshold and everything else."""
    if not evidence:
        return Evidence()
    used: set[str] = set()
    features: list[FeatureMove] = []
    peaks: list[SpectralPeak] = []
    for key in _FEATURE_KEYS:
        if key in evidence:
            features.extend(_features(evidence[key]))
            used.add(key)
    for key in _PEAK_KEYS:
        if key in evidence:
            peaks.extend(_peaks(evidence[key]))
            used.add(key)
    threshold = None
    for key in _THRESHOLD_KEYS:
        if key in evidence and _num(evidence[key]) is not None:
            threshold = _num(evidence[key])
            used.add(key)
            break
    diagnosis = evidence.get("diagnosis")
    models = evidence.get("models")
    point = evidence.get("point")
    persistence = _persistence(evidence.get("persistence"))
    used.update(("diagnosis", "models", "point"))
    if persistence is not None:
        used.add("persistence")
    other = {k: v for k, v in evidence.items() if k not in used}
    return Evidence(
        features=features,
        peaks=peaks,
        threshold=threshold,
        point=str(point) if point is not None else None,
        diagnosis=dict(diagnosis) if isinstance(diagnosis, Mapping) else {},
        persistence=persistence,
        models=dict(models) if isinstance(models, Mapping) else {},
        other=other,
    )
