"""Envelope-analysis helpers for bearing diagnosis: pre-whitening and squared envelope spectra.

Pure numpy/scipy, vectorised over windows; private to ``models.diagnosis``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray
from scipy.ndimage import median_filter

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]

#: Running-median length (bins) of the envelope-spectrum noise floor: wide enough to ignore
#: a few discrete lines, narrow enough to follow the coloured envelope floor.
FLOOR_BINS = 41


def whitened_spectrum(windows: FloatArray) -> ComplexArray:
    """Cepstrally pre-whitened rFFT of each window: unit magnitude, phase kept.

    Zeroing the real cepstrum flattens the spectrum, so strong discrete lines (shaft
    harmonics, gear mesh) and the resonance shape no longer dominate the envelope; the
    impulsive bearing content survives in the phase (Sawalhi & Randall).
    """
    spec = sfft.rfft(windows - windows.mean(axis=-1, keepdims=True), axis=-1)
    mag = np.abs(spec)
    # Bins far below the mean magnitude (empty bins, or every bin of a constant window)
    # stay empty rather than being blown up to 1; dividing by a tiny floor would overflow.
    live = mag > 1e-12 * mag.mean(axis=-1, keepdims=True)
    return np.asarray(np.where(live, spec / np.where(live, mag, 1.0), 0.0), dtype=np.complex128)


@lru_cache(maxsize=32)
def _hann(n: int) -> FloatArray:
    return np.hanning(n)


def squared_envelope_spectrum(
    spec: ComplexArray, n: int, fs: float, band: tuple[float, float], max_hz: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Averaged squared-envelope amplitude spectrum of ``band`` up to ``max_hz``, and its floor.

    ``spec`` is the rFFT of windows of length ``n``. The squared envelope keeps the
    cyclostationary lines without the modulus' distortion. The band is demodulated to
    baseband and only as many samples are synthesised as the band plus ``max_hz`` need
    (no aliasing below ``max_hz``), which makes narrow bands cheap.
    """
    resolution = fs / n
    # No envelope line lies above Nyquist; an absurd shaft speed (a bad snapshot header)
    # must not make this allocate gigabytes. Lines beyond it read as missing (NaN).
    max_hz = min(max_hz, fs / 2.0)
    lo_bin = max(int(band[0] / resolution), 1)
    hi_bin = min(int(np.ceil(band[1] / resolution)) + 1, spec.shape[-1])
    freqs = np.arange(lo_bin, hi_bin) * resolution
    lo, hi = band
    taper = max(0.05 * (hi - lo), resolution)
    gain = np.clip(np.minimum(freqs - lo, hi - freqs) / taper + 0.5, 0.0, 1.0)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    keep = int(np.ceil(max_hz / resolution)) + FLOOR_BINS
    # m samples span `keep` bins of the envelope spectrum only if m/2 + 1 >= keep: a band
    # narrower than max_hz needs more samples than its own width plus max_hz (else the
    # spectrum comes out shorter than its frequency axis).
    m = sfft.next_fast_len(max(hi_bin - lo_bin + keep + 1, 2 * keep))
    analytic = np.zeros((*spec.shape[:-1], m), dtype=np.complex128)
    analytic[..., : hi_bin - lo_bin] = spec[..., lo_bin:hi_bin] * gain
    env2 = np.abs(sfft.ifft(analytic, axis=-1)) ** 2
    env2 -= env2.mean(axis=-1, keepdims=True)
    power = np.abs(sfft.rfft(env2 * _hann(m), axis=-1)[..., :keep]) ** 2
    amp = np.sqrt(power.mean(axis=0) if power.ndim > 1 else power)
    floor = median_filter(amp, size=FLOOR_BINS, mode="nearest")
    freqs_out = np.arange(keep, dtype=np.float64) * resolution
    return freqs_out, amp, np.maximum(floor, 1e-300)


def line_ratios(
    freqs: FloatArray, amp: FloatArray, floor: FloatArray, targets_hz: FloatArray, tol: float
) -> tuple[FloatArray, FloatArray]:
    """(frequency, ratio to floor) of the strongest line within ±tol (relative) of each target.

    Vectorised over targets: one masked argmax over a (targets × bins) window of indices.
    """
    resolution = float(freqs[1] - freqs[0])
    t = np.asarray(targets_hz, dtype=np.float64)
    half = np.maximum(tol * t, 1.5 * resolution)
    lo = np.clip(np.floor((t - half) / resolution), 0, freqs.size - 1).astype(np.int64)
    hi = np.clip(np.ceil((t + half) / resolution), 0, freqs.size - 1).astype(np.int64)
    width = int(np.max(hi - lo)) + 1 if t.size else 1
    idx = lo[..., np.newaxis] + np.arange(width)
    valid = idx <= hi[..., np.newaxis]
    idx = np.minimum(idx, freqs.size - 1)
    ratio = np.where(valid, amp[idx] / floor[idx], -np.inf)
    best = np.argmax(ratio, axis=-1)
    pick = np.take_along_axis(idx, best[..., np.newaxis], axis=-1)[..., 0]
    out = np.take_along_axis(ratio, best[..., np.newaxis], axis=-1)[..., 0]
    bad = (t <= 0) | (t - half > freqs[-1])
    return np.where(bad, np.nan, freqs[pick]), np.where(bad, np.nan, out)


def coherent_line_ratios(
    freqs: FloatArray, ratio: FloatArray, targets_hz: FloatArray, tol: float
) -> tuple[float, FloatArray, FloatArray]:
    """Best common speed factor within ±tol for a harmonic family, and its lines there.

    All harmonics of one defect move together with the true speed, so one factor is searched
    for the whole family (maximising the geometric mean of line-to-floor ``ratio``), instead of
    letting each harmonic pick the largest noise peak in its own window. Returns (factor,
    frequencies, ratios); NaN ratios for targets beyond the spectrum.
    """
    resolution = float(freqs[1] - freqs[0])
    t = np.asarray(targets_hz, dtype=np.float64)
    # Grid fine enough that the highest visible harmonic moves at most half a bin per step
    # (targets beyond the spectrum read NaN whatever the factor).
    steps = int(np.ceil(4.0 * tol * min(float(t.max()), float(freqs[-1])) / resolution)) + 1
    factors = np.linspace(1.0 - tol, 1.0 + tol, max(steps, 3))
    idx = np.rint(np.outer(factors, t) / resolution).astype(np.int64)
    inside = idx < freqs.size
    r = np.where(inside, ratio[np.minimum(idx, freqs.size - 1)], 1.0)
    score = np.exp(np.mean(np.log(np.maximum(r, 1e-3)), axis=-1))
    # Ties (flat noise) resolve towards the nominal speed.
    best = int(np.argmax(score - 1e-9 * np.abs(factors - 1.0)))
    out = np.where(inside[best], r[best], np.nan)
    return float(factors[best]), freqs[np.minimum(idx[best], freqs.size - 1)], out
