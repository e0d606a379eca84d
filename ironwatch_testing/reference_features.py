"""The edge feature code as it was before the fast path, kept as its reference.

Powers for the moments (``c**3``, ``c**4``: a libm pow per sample), full-length spectra for
every peak search and a full band-pass product for the envelope. The tests check that
``models.features.extract_features`` gives the same numbers, and ``bench/edge_features.py``
times both in the same run.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numpy.typing import ArrayLike

from models.bearing import BearingLike, defect_orders
from models.features import (
    _DEFECTS,
    _ORDERS,
    ACCEL_BANDS_HZ,
    FEATURE_NAMES,
    PEAK_TOLERANCE,
    FloatArray,
    _as_waveforms,
    _band_rms,
    _broadcast_speed,
    _hann,
    _velocity_rms_mms,
    envelope_band_hz,
)

__all__ = ["reference_extract_features"]


def _power_spectrum(x: FloatArray, fs: float) -> tuple[FloatArray, FloatArray]:
    n = x.shape[-1]
    w = _hann(n)
    spec = sfft.rfft(x * w, axis=-1)
    power = (spec.real**2 + spec.imag**2) / (n * float(np.sum(w * w)))
    power[..., 1 : (n + 1) // 2] *= 2.0
    return sfft.rfftfreq(n, 1.0 / fs), power


def _envelope(x: FloatArray, fs: float, band: tuple[float, float]) -> FloatArray:
    n = x.shape[-1]
    spec = sfft.rfft(x, axis=-1)
    freqs = sfft.rfftfreq(n, 1.0 / fs)
    lo, hi = band
    taper = max(0.05 * (hi - lo), fs / n)
    gain = np.clip(np.minimum(freqs - lo, hi - freqs) / taper + 0.5, 0.0, 1.0)
    gain = 2.0 * (0.5 - 0.5 * np.cos(np.pi * gain))
    analytic = np.zeros((*x.shape[:-1], n), dtype=np.complex128)
    analytic[..., : freqs.size] = spec * gain
    if n % 2 == 0:
        analytic[..., n // 2] *= 0.5
    return np.asarray(np.abs(sfft.ifft(analytic, axis=-1)), dtype=np.float64)


def _peak_near(
    freqs: FloatArray, power: FloatArray, target_hz: FloatArray, fs: float
) -> FloatArray:
    resolution = float(freqs[1] - freqs[0])
    lobe = power.copy()
    lobe[..., 1:] += power[..., :-1]
    lobe[..., :-1] += power[..., 1:]
    half_width = np.maximum(PEAK_TOLERANCE * target_hz, 1.5 * resolution)[..., np.newaxis]
    t = target_hz[..., np.newaxis]
    mask = (np.abs(freqs - t) <= half_width) & (freqs > 0)
    best = np.max(lobe, axis=-1, where=mask, initial=-1.0)
    valid = np.isfinite(target_hz) & (target_hz + half_width[..., 0] <= fs / 2) & (best >= 0)
    return np.where(valid, np.sqrt(2.0 * np.maximum(best, 0.0)), np.nan)


def _moments(x: FloatArray) -> dict[str, FloatArray]:
    centred = x - x.mean(axis=-1, keepdims=True)
    m2 = np.mean(centred**2, axis=-1)
    m3 = np.mean(centred**3, axis=-1)
    m4 = np.mean(centred**4, axis=-1)
    peak = np.max(np.abs(centred), axis=-1)
    rms = np.sqrt(m2)
    ok = m2 > 0
    safe_m2 = np.where(ok, m2, 1.0)
    return {
        "accel_rms_ms2": rms,
        "accel_peak_ms2": peak,
        "crest_factor": np.where(ok, peak / np.where(ok, rms, 1.0), np.nan),
        "kurtosis": np.where(ok, m4 / safe_m2**2, np.nan),
        "skewness": np.where(ok, m3 / safe_m2**1.5, np.nan),
    }


def reference_extract_features(
    waveforms: ArrayLike,
    sample_rate_hz: float,
    *,
    shaft_hz: float | ArrayLike | None = None,
    bearing: BearingLike | None = None,
) -> dict[str, FloatArray]:
    """``extract_features`` as it was computed before the fast path (same contract)."""
    fs = float(sample_rate_hz)
    x = _as_waveforms(waveforms, fs)
    lead = x.shape[:-1]
    x = x - x.mean(axis=-1, keepdims=True)
    speed = _broadcast_speed(shaft_hz, lead)

    out = _moments(x)
    freqs, power = _power_spectrum(x, fs)
    out["velocity_rms_mms"] = _velocity_rms_mms(freqs, power)
    nyquist = fs / 2.0
    for name, (lo, hi) in ACCEL_BANDS_HZ.items():
        out[name] = _band_rms(freqs, power, lo, hi) if hi <= nyquist else np.full(lead, np.nan)

    if bearing is not None and np.any(np.isfinite(speed)):
        env = _envelope(x, fs, envelope_band_hz(fs))
        _, env_power = _power_spectrum(env - env.mean(axis=-1, keepdims=True), fs)
        for name, order in zip(_DEFECTS, defect_orders(bearing), strict=True):
            out[f"env_{name}_ms2"] = _peak_near(freqs, env_power, order * speed, fs)
    else:
        for name in _DEFECTS:
            out[f"env_{name}_ms2"] = np.full(lead, np.nan)

    for k in _ORDERS:
        out[f"order_{k}x_ms2"] = _peak_near(freqs, power, k * speed, fs)
    return {name: np.asarray(out[name], dtype=np.float64) for name in FEATURE_NAMES}
