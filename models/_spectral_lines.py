"""Line families in a spectrum: the shaft speed a spectrum shows, and the strongest combs.

Pure numpy, private to ``models.diagnosis``. Both work on a line-to-floor ratio spectrum
(amplitude over its running median), so they are blind to the overall level.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Harmonics that make a family: a comb, not a single line.
FAMILY_HARMONICS = (1.0, 2.0, 3.0)


class LineFamily(NamedTuple):
    """A harmonic comb: fundamental (Hz), as an order of shaft speed, and its strength."""

    fundamental_hz: float
    order: float
    score: float
    ratios: tuple[float, ...]


def family_score(freqs: FloatArray, ratio: FloatArray, fundamental_hz: float) -> FloatArray:
    """Line-to-floor ratio of each harmonic of ``fundamental_hz`` (±1.5 bins), NaN past the end."""
    resolution = float(freqs[1] - freqs[0])
    out = np.full(len(FAMILY_HARMONICS), np.nan)
    for i, k in enumerate(FAMILY_HARMONICS):
        centre = k * fundamental_hz / resolution
        lo, hi = math.floor(centre - 1.5), math.ceil(centre + 1.5)
        if hi >= ratio.size or lo < 1:
            continue
        out[i] = float(ratio[lo : hi + 1].max())
    return out


def _geometric_mean(r: FloatArray) -> float:
    return float(np.exp(np.mean(np.log(np.maximum(np.nan_to_num(r, nan=1.0), 1e-3)))))


def line_families(
    freqs: FloatArray,
    ratio: FloatArray,
    shaft_hz: float,
    *,
    min_ratio: float = 3.0,
    max_families: int = 3,
    candidates: int = 15,
) -> list[LineFamily]:
    """The strongest harmonic combs of a ratio spectrum, strongest first.

    Each local maximum above ``min_ratio`` (above 0.3× shaft and the fifth bin, below a third
    of the span, so that three harmonics fit) is tried as a fundamental; a comb's score is the
    geometric mean of its three harmonics' ratios. Combs that are harmonics or near-duplicates of a
    stronger one are dropped, so a 1× comb is not also reported as 2× and 3×.
    """
    if freqs.size < 8 or not math.isfinite(shaft_hz) or shaft_hz <= 0:
        return []
    resolution = float(freqs[1] - freqs[0])
    # The running-median floor is unreliable in the first few bins (its window is cut there).
    lo = max(int(0.3 * shaft_hz / resolution), 5)
    hi = ratio.size // 3
    if hi <= lo + 1:
        return []
    r = ratio[lo - 1 : hi + 1]
    inner = r[1:-1]
    peak = (inner >= r[:-2]) & (inner >= r[2:]) & (inner > min_ratio)
    idx = np.flatnonzero(peak) + lo
    idx = idx[np.argsort(-ratio[idx], kind="stable")][:candidates]
    tried = []
    for i in idx:
        f0 = float(freqs[i])
        rs = family_score(freqs, ratio, f0)
        tried.append(LineFamily(f0, f0 / shaft_hz, _geometric_mean(rs), tuple(map(float, rs))))
    tried.sort(key=lambda fam: -fam.score)
    kept: list[LineFamily] = []
    for fam in tried:
        redundant = False
        for other in kept:
            m = fam.order / other.order
            if round(m) >= 2 and abs(m - round(m)) < 0.02:
                redundant = True  # a harmonic of a stronger comb
            if abs(fam.fundamental_hz - other.fundamental_hz) <= 2.0 * resolution:
                redundant = True
        if not redundant:
            kept.append(fam)
        if len(kept) == max_families:
            break
    return kept


def shaft_speed_from_spectrum(
    freqs: FloatArray, ratio: FloatArray, nominal_hz: float, tolerance: float, min_ratio: float
) -> tuple[float, float] | None:
    """Shaft speed (Hz) read from the 1×–3× comb near ``nominal_hz`` ± ``tolerance``, and its
    strength; None when no comb stands above ``min_ratio`` (geometric mean of the three).

    One common factor moves all three harmonics together, so a stray line near 1× alone
    cannot move the speed.
    """
    resolution = float(freqs[1] - freqs[0])
    if not math.isfinite(nominal_hz) or nominal_hz <= 2 * resolution:
        return None
    targets = np.asarray(FAMILY_HARMONICS) * nominal_hz
    steps = int(np.ceil(4.0 * tolerance * float(targets.max()) / resolution)) + 1
    factors = np.linspace(1.0 - tolerance, 1.0 + tolerance, max(steps, 3))
    bins = np.rint(np.outer(factors, targets) / resolution).astype(np.int64)
    inside = bins < ratio.size
    r = np.where(inside, ratio[np.minimum(bins, ratio.size - 1)], 1.0)
    score = np.exp(np.mean(np.log(np.maximum(r, 1e-3)), axis=-1))
    best = int(np.argmax(score - 1e-9 * np.abs(factors - 1.0)))
    first = float(r[best, 0])
    if score[best] < min_ratio or first < min_ratio:
        return None
    # Refine each harmonic's peak between bins (parabola through the log ratios around it)
    # and average their speed estimates, weighted by harmonic number: the k-th harmonic
    # pins the speed k times finer.
    estimates, weights = [], []
    for j, k in enumerate(FAMILY_HARMONICS):
        b = int(bins[best, j])
        if not 1 <= b < ratio.size - 2:
            continue
        b += int(np.argmax(ratio[b - 1 : b + 2])) - 1
        y0, y1, y2 = np.log(np.maximum(ratio[b - 1 : b + 2], 1e-12))
        curve = y0 - 2.0 * y1 + y2
        shift = 0.5 * (y0 - y2) / curve if curve < 0 else 0.0
        estimates.append((freqs[b] + float(np.clip(shift, -0.5, 0.5)) * resolution) / k)
        weights.append(k)
    if not estimates:
        return None
    return float(np.average(estimates, weights=weights)), float(score[best])
