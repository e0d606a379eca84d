"""Evidence of health from one record: level, impulsiveness and line structure.

"Normal" needs every indicator inside its limit; any one beyond it makes the record
abnormal. Pure numpy/scipy, private to ``models.diagnosis``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from models._spectral_lines import LineFamily

FloatArray = NDArray[np.float64]

#: Health evidence, as (healthy value, limit, sure) per indicator: below the limit counts for
#: health (fully at the healthy value); above it the signal is abnormal (fully at "sure").
#: Kurtosis of Gaussian noise is 3, of a sine 1.5; impacts raise it. Crest factor of
#: Gaussian noise over a second of samples is ≈4.5. Ratio of acceleration RMS to the asset's
#: healthy level (when known). Strongest envelope comb (whitened noise ≈1.3–2).
HEALTH_LIMITS: dict[str, tuple[float, float, float]] = {
    "kurtosis": (3.0, 3.6, 8.0),
    "crest_factor": (4.5, 6.5, 10.0),
    "accel_rms_ratio": (1.0, 1.4, 3.0),
    "envelope_structure": (1.5, 2.5, 6.0),
}


def _indicator(value: float, healthy: float, limit: float, sure: float) -> tuple[float, float]:
    """(health margin, abnormality), each 0–1 on a log scale, for one health indicator."""
    v = max(value, 1e-12)
    if v <= limit:
        return min(1.0, math.log(limit / v) / math.log(limit / healthy)), 0.0
    return 0.0, min(1.0, math.log(v / limit) / math.log(sure / limit))


def health_evidence(
    windows: FloatArray,
    zone: str,
    families: tuple[LineFamily, ...],
    baseline_rms_ms2: float | None,
) -> tuple[dict[str, float], float, float]:
    """Indicators of health, and (health margin, abnormality) over all of them.

    Health margin is the weakest indicator's margin (every one must speak for health);
    abnormality the strongest indicator's excess (any one is enough). NaN margin when no
    indicator could be computed (a constant signal says nothing about the machine).
    """
    centred = windows - windows.mean(axis=-1, keepdims=True)
    rms = np.sqrt(np.mean(centred**2, axis=-1))
    # A constant window leaves only rounding after the mean is removed: dead, not live.
    level = np.abs(windows).max(axis=-1)
    live = rms > 1e-9 * level
    values: dict[str, float] = {"accel_rms_ms2": float(np.mean(rms))}
    if live.any():
        with np.errstate(invalid="ignore", divide="ignore"):
            kurt = stats.kurtosis(centred[live], axis=-1, fisher=False)
        values["kurtosis"] = float(np.median(kurt))
        values["crest_factor"] = float(np.median(np.abs(centred[live]).max(axis=-1) / rms[live]))
        values["envelope_structure"] = families[0].score if families else 1.0
    if baseline_rms_ms2 is not None and baseline_rms_ms2 > 0 and live.any():
        values["accel_rms_ratio"] = float(np.mean(rms)) / baseline_rms_ms2
    margins, excess = [], [0.0]
    for name, (healthy, limit, sure) in HEALTH_LIMITS.items():
        value = values.get(name, math.nan)
        if math.isfinite(value):
            h, a = _indicator(value, healthy, limit, sure)
            margins.append(h)
            excess.append(a)
    if margins:
        margins.append({"A": 1.0, "B": 0.5}.get(zone, 0.0))
        excess.append({"C": 0.5, "D": 1.0}.get(zone, 0.0))
    for i, fam in enumerate(families[:3], start=1):
        values[f"family_{i}_order"] = fam.order
        values[f"family_{i}_ratio"] = fam.score
    health = min(margins) if margins else math.nan
    return values, health, max(excess)
