"""Envelope-analysis helpers for bearing diagnosis: pre-whitening and squared envelope spectra.

Pure numpy/scipy, vectorised over windows; private to ``models.diagnosis``.
"""

from __future__ import annotations

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
    # A floor relative to the mean magnitude keeps empty bins from being blown up to 1.
    eps = 1e-12 * (mag.mean(axis=-1, keepdims=True) + 1e-300)
    return np.asarray(spec / np.maximum(mag, eps), dtype=np.complex128)


def squared_envelope_spectrum(
    spec: ComplexArray, n: int, fs: float, band: tuple[float, float]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Averaged squared-envelope amplitude spectrum of ``band`` and its running-median floor.

    ``spec`` is the rFFT of windows of length ``n``. The squared envelope is used (not the
    envelope) because its spectrum keeps the cyclostationary lines without the modulus'
    harmonic distortion.
    """
    freqs = sfft.rfftfreq(n, 1.0 / fs)
    lo, hi = band
    taper = max(0.05 * (hi - lo), fs / n)
    gain = np.clip(np.minimum(freqs - lo, hi - freqs) / taper + 0.5, 0.0, 1.0)
    gain = 2.0 * (0.5 - 0.5 * np.cos(np.pi * gain))
    analytic = np.zeros((*spec.shape[:-1], n), dtype=np.complex128)
    analytic[..., : freqs.size] = spec * gain
    env2 = np.abs(sfft.ifft(analytic, axis=-1)) ** 2
    env2 -= env2.mean(axis=-1, keepdims=True)
    hann = np.hanning(n)
    power = np.abs(sfft.rfft(env2 * hann, axis=-1)) ** 2
    amp = np.sqrt(power.mean(axis=0) if power.ndim > 1 else power)
    floor = median_filter(amp, size=FLOOR_BINS, mode="nearest")
    return freqs, amp, np.maximum(floor, 1e-300)


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
