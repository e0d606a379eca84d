"""Vibration and temperature features shared by the gateway and the cloud.

One implementation so that a feature computed on a gateway and re-computed in the cloud from
the raw waveform snapshot give the same numbers. Pure numpy/scipy, vectorised over every
leading axis of the input (windows × channels × ...), float64 throughout.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.fft as sfft
from numpy.typing import ArrayLike, NDArray

from models.bearing import BearingLike, defect_orders

__all__ = [
    "ACCEL_BANDS_HZ",
    "FEATURE_NAMES",
    "ISO_VELOCITY_BAND_HZ",
    "PEAK_TOLERANCE",
    "envelope_band_hz",
    "envelope_spectrum",
    "extract_features",
    "spectrum",
    "temperature_features",
]

FloatArray = NDArray[np.float64]

#: ISO 10816/20816 broadband velocity band.
ISO_VELOCITY_BAND_HZ: tuple[float, float] = (10.0, 1000.0)

#: Acceleration RMS bands; the name is fixed, the value is NaN when the band exceeds Nyquist.
ACCEL_BANDS_HZ: dict[str, tuple[float, float]] = {
    "band_0k_1k_rms_ms2": (0.0, 1000.0),
    "band_1k_2k_rms_ms2": (1000.0, 2000.0),
    "band_2k_4k_rms_ms2": (2000.0, 4000.0),
    "band_4k_8k_rms_ms2": (4000.0, 8000.0),
    "band_8k_12k_rms_ms2": (8000.0, 12000.0),
}

#: Samples per block of windows processed together (three axes of a 16384-sample window).
_BLOCK_SAMPLES = 3 * 16_384

#: Relative half-width of the search window around a target frequency: speed is never exact.
PEAK_TOLERANCE = 0.02

_DEFECTS = ("bpfo", "bpfi", "bsf", "ftf")
_ORDERS = (1, 2, 3)

FEATURE_NAMES: tuple[str, ...] = (
    "accel_rms_ms2",
    "accel_peak_ms2",
    "crest_factor",
    "kurtosis",
    "skewness",
    "velocity_rms_mms",
    *ACCEL_BANDS_HZ,
    *(f"env_{d}_ms2" for d in _DEFECTS),
    *(f"order_{k}x_ms2" for k in _ORDERS),
)


def envelope_band_hz(sample_rate_hz: float) -> tuple[float, float]:
    """Default demodulation band: above shaft/defect harmonics, below the anti-alias roll-off.

    Structural resonances excited by bearing impacts usually sit in 2–10 kHz; the band shrinks
    with the sample rate so that it always fits below Nyquist.
    """
    return (min(2000.0, 0.2 * sample_rate_hz), min(10000.0, 0.45 * sample_rate_hz))


def _as_waveforms(waveforms: ArrayLike, sample_rate_hz: float) -> FloatArray:
    x = np.asarray(waveforms, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] < 4:
        raise ValueError(f"waveforms need a last axis of at least 4 samples, got {x.shape}")
    if not math.isfinite(sample_rate_hz) or sample_rate_hz <= 0:
        raise ValueError(f"sample_rate_hz must be finite and > 0, got {sample_rate_hz!r}")
    return x


@lru_cache(maxsize=16)
def _hann(n: int) -> FloatArray:
    # Periodic Hann: exact amplitude/energy corrections for bin-centred tones. Cached (read
    # only): a gateway calls with the same window length every time.
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    w.setflags(write=False)
    return w


@lru_cache(maxsize=16)
def _hann_power(n: int) -> float:
    """Sum of the squared Hann window: the power spectrum's normalisation."""
    w = _hann(n)
    return float(np.sum(w * w))


@lru_cache(maxsize=16)
def _rfft_freqs(n: int, fs: float) -> FloatArray:
    freqs = sfft.rfftfreq(n, 1.0 / fs)
    freqs.setflags(write=False)
    return np.asarray(freqs, dtype=np.float64)


@lru_cache(maxsize=16)
def _envelope_gain(n: int, fs: float, lo: float, hi: float) -> tuple[int, FloatArray]:
    """First bin and gains of the tapered analytic band-pass (only its non-zero bins)."""
    freqs = _rfft_freqs(n, fs)
    # Analytic signal of the band-passed signal: positive in-band frequencies doubled, the rest
    # zero; the band edges are tapered over 5 % of the width to limit ringing.
    taper = max(0.05 * (hi - lo), fs / n)
    gain = np.clip(np.minimum(freqs - lo, hi - freqs) / taper + 0.5, 0.0, 1.0)
    gain = 2.0 * (0.5 - 0.5 * np.cos(np.pi * gain))
    if n % 2 == 0:
        gain[n // 2] *= 0.5
    inside = np.flatnonzero(gain)
    a, b = (int(inside[0]), int(inside[-1]) + 1) if inside.size else (0, 0)
    band = gain[a:b].copy()
    band.setflags(write=False)
    return a, band


def _power_spectrum(
    x: FloatArray, fs: float, stop: int | None = None
) -> tuple[FloatArray, FloatArray]:
    """One-sided Hann power spectrum whose bins sum to the mean-square of ``x`` (Parseval).

    ``stop`` keeps only the first bins (the caller needs no more): the rest is not squared.
    """
    n = x.shape[-1]
    spec = sfft.rfft(x * _hann(n), axis=-1)[..., :stop]
    power = (spec.real**2 + spec.imag**2) / (n * _hann_power(n))
    # Fold negative frequencies in; DC and (even n) Nyquist have no mirror image.
    power[..., 1 : (n + 1) // 2] *= 2.0
    return _rfft_freqs(n, fs)[:stop], power


def spectrum(waveform: ArrayLike, fs: float) -> tuple[FloatArray, FloatArray]:
    """Hann-windowed amplitude spectrum (0-to-peak, input units) of the mean-removed signal."""
    x = _as_waveforms(waveform, fs)
    x = x - x.mean(axis=-1, keepdims=True)
    n = x.shape[-1]
    w = _hann(n)
    amp = np.abs(sfft.rfft(x * w, axis=-1)) * (2.0 / float(np.sum(w)))
    amp[..., 0] *= 0.5
    return sfft.rfftfreq(n, 1.0 / fs), amp


def _envelope(x: FloatArray, fs: float, band: tuple[float, float]) -> FloatArray:
    """Hilbert envelope of ``x`` band-passed to ``band`` (both done in one FFT round trip)."""
    n = x.shape[-1]
    spec = sfft.rfft(x, axis=-1)
    first, gain = _envelope_gain(n, fs, float(band[0]), float(band[1]))
    # Only the band's bins are non-zero: multiply those alone.
    analytic = np.zeros((*x.shape[:-1], n), dtype=np.complex128)
    analytic[..., first : first + gain.size] = spec[..., first : first + gain.size] * gain
    envelope = np.abs(sfft.ifft(analytic, axis=-1, overwrite_x=True))
    return np.asarray(envelope, dtype=np.float64)


def envelope_spectrum(
    waveform: ArrayLike, fs: float, band: tuple[float, float] | None = None
) -> tuple[FloatArray, FloatArray]:
    """Amplitude spectrum of the Hilbert envelope of the band-passed signal.

    Bearing impacts excite a high-frequency resonance at the defect rate; demodulating that
    band exposes the defect frequency that the plain spectrum buries under shaft harmonics.
    """
    x = _as_waveforms(waveform, fs)
    lo, hi = envelope_band_hz(fs) if band is None else band
    if not 0.0 <= lo < hi <= fs / 2:
        raise ValueError(f"band must satisfy 0 <= lo < hi <= fs/2, got {(lo, hi)}")
    return spectrum(_envelope(x, fs, (lo, hi)), fs)


def _peak_near(
    freqs: FloatArray, power: FloatArray, target_hz: FloatArray, fs: float
) -> FloatArray:
    """0-to-peak amplitude of the strongest component within ±PEAK_TOLERANCE of each target.

    ``power`` is a Parseval-normalised spectrum; summing a bin with its neighbours captures
    the Hann main lobe, so the amplitude does not depend on where the tone falls between bins.
    The target may differ per window (shape = leading shape); NaN targets give NaN.
    """
    resolution = float(freqs[1] - freqs[0])
    stop = _bins_needed(target_hz, resolution, power.shape[-1])
    freqs, power = freqs[:stop], power[..., :stop]
    lobe = power.copy()
    lobe[..., 1:] += power[..., :-1]
    lobe[..., :-1] += power[..., 1:]
    half_width = np.maximum(PEAK_TOLERANCE * target_hz, 1.5 * resolution)[..., np.newaxis]
    t = target_hz[..., np.newaxis]
    # DC is excluded: a 0 Hz target is meaningless and DC was removed anyway.
    mask = (np.abs(freqs - t) <= half_width) & (freqs > 0)
    best = np.max(lobe, axis=-1, where=mask, initial=-1.0)
    valid = np.isfinite(target_hz) & (target_hz + half_width[..., 0] <= fs / 2) & (best >= 0)
    return np.where(valid, np.sqrt(2.0 * np.maximum(best, 0.0)), np.nan)


def _bins_needed(target_hz: FloatArray, resolution: float, size: int) -> int:
    """Bins a peak search around ``target_hz`` can use: up to the highest target's window
    plus the main-lobe neighbour, so the rest of a spectrum need not be touched."""
    reach = target_hz + np.maximum(PEAK_TOLERANCE * target_hz, 1.5 * resolution)
    finite = reach[np.isfinite(reach)]
    stop = int(np.max(finite) / resolution) + 3 if finite.size else 3
    return min(stop, size)


def _moments(centred: FloatArray) -> dict[str, FloatArray]:
    """Time-domain statistics of mean-removed windows.

    Products instead of powers (``c**3`` is a libm pow per sample, several times slower than
    two multiplies) and sums of products instead of means over temporaries. einsum, not a
    BLAS dot: a threaded BLAS on a busy core can stall a gateway far longer than it saves.
    """
    n = centred.shape[-1]
    sq = centred * centred
    m2 = np.einsum("...n,...n->...", centred, centred) / n
    m3 = np.einsum("...n,...n->...", sq, centred) / n
    m4 = np.einsum("...n,...n->...", sq, sq) / n
    peak = np.maximum(centred.max(axis=-1), -centred.min(axis=-1))
    rms = np.sqrt(m2)
    # A constant window has no shape: NaN rather than a division warning.
    ok = m2 > 0
    safe_m2 = np.where(ok, m2, 1.0)
    return {
        "accel_rms_ms2": rms,
        "accel_peak_ms2": peak,
        "crest_factor": np.where(ok, peak / np.where(ok, rms, 1.0), np.nan),
        "kurtosis": np.where(ok, m4 / (safe_m2 * safe_m2), np.nan),
        "skewness": np.where(ok, m3 / (safe_m2 * np.sqrt(safe_m2)), np.nan),
    }


def _band_rms(freqs: FloatArray, power: FloatArray, lo: float, hi: float) -> FloatArray:
    # freqs ascend: the bins with lo <= f < hi are one slice.
    sel = slice(int(np.searchsorted(freqs, lo)), int(np.searchsorted(freqs, hi)))
    return np.asarray(np.sqrt(np.sum(power[..., sel], axis=-1)), dtype=np.float64)


def _velocity_rms_mms(freqs: FloatArray, power: FloatArray) -> FloatArray:
    """ISO 10816 velocity RMS: integrate acceleration in the frequency domain (÷ω) in-band."""
    lo, hi = ISO_VELOCITY_BAND_HZ
    sel = (freqs >= lo) & (freqs <= hi) & (freqs > 0)
    omega2 = (2.0 * np.pi * freqs[sel]) ** 2
    return np.asarray(np.sqrt(np.sum(power[..., sel] / omega2, axis=-1)) * 1000.0, dtype=np.float64)


def _broadcast_speed(shaft_hz: float | ArrayLike | None, lead: tuple[int, ...]) -> FloatArray:
    if shaft_hz is None:
        return np.full(lead, np.nan)
    speed = np.asarray(shaft_hz, dtype=np.float64)
    try:
        speed = np.broadcast_to(speed, lead)
    except ValueError as err:
        raise ValueError(
            f"shaft_hz of shape {speed.shape} does not broadcast to the window shape {lead}"
        ) from err
    # A stopped or unknown speed gives NaN order features rather than a bogus DC peak.
    return np.where(speed > 0, speed, np.nan)


def extract_features(
    waveforms: ArrayLike,
    sample_rate_hz: float,
    *,
    shaft_hz: float | ArrayLike | None = None,
    bearing: BearingLike | None = None,
) -> dict[str, FloatArray]:
    """Compute every name in FEATURE_NAMES for acceleration windows in m/s², shape (..., n).

    Returns name → float64 array of the leading shape. Statistics use the mean-removed signal;
    ``order_*`` and ``env_*`` are 0-to-peak amplitudes of the strongest line within ±2 % of
    the target (NaN without ``shaft_hz``, and ``env_*`` also NaN without ``bearing``).
    ``shaft_hz`` is a scalar or an array broadcastable to the leading shape.
    """
    fs = float(sample_rate_hz)
    x = _as_waveforms(waveforms, fs)
    lead = x.shape[:-1]
    speed = _broadcast_speed(shaft_hz, lead).reshape(-1)
    rows = x.reshape(-1, x.shape[-1])
    # Blocks of a few windows keep every intermediate in cache: a long batch then costs
    # what the same windows cost one call at a time, instead of streaming through memory.
    block = max(1, _BLOCK_SAMPLES // rows.shape[-1])
    parts = [
        _window_features(rows[i : i + block], fs, speed[i : i + block], bearing)
        for i in range(0, max(rows.shape[0], 1), block)
    ]
    return {
        name: np.concatenate([part[name] for part in parts]).reshape(lead)
        for name in FEATURE_NAMES
    }


def _window_features(
    x: FloatArray, fs: float, speed: FloatArray, bearing: BearingLike | None
) -> dict[str, FloatArray]:
    """Every feature of windows ``x`` (rows × samples) with one shaft speed per row."""
    lead = x.shape[:-1]
    x = x - x.mean(axis=-1, keepdims=True)

    out = _moments(x)
    freqs, power = _power_spectrum(x, fs)
    out["velocity_rms_mms"] = _velocity_rms_mms(freqs, power)
    nyquist = fs / 2.0
    for name, (lo, hi) in ACCEL_BANDS_HZ.items():
        out[name] = _band_rms(freqs, power, lo, hi) if hi <= nyquist else np.full(lead, np.nan)

    if bearing is not None and np.any(np.isfinite(speed)):
        env = _envelope(x, fs, envelope_band_hz(fs))
        orders = defect_orders(bearing)
        # Defect lines sit at a few shaft orders: the envelope spectrum is needed that far.
        stop = _bins_needed(max(orders) * speed, float(freqs[1]), freqs.size)
        _, env_power = _power_spectrum(env - env.mean(axis=-1, keepdims=True), fs, stop)
        for name, order in zip(_DEFECTS, orders, strict=True):
            out[f"env_{name}_ms2"] = _peak_near(freqs[:stop], env_power, order * speed, fs)
    else:
        for name in _DEFECTS:
            out[f"env_{name}_ms2"] = np.full(lead, np.nan)

    for k in _ORDERS:
        out[f"order_{k}x_ms2"] = _peak_near(freqs, power, k * speed, fs)
    return {name: np.asarray(out[name], dtype=np.float64) for name in FEATURE_NAMES}


def temperature_features(
    temps_c: ArrayLike, times_s: ArrayLike | None = None
) -> dict[str, FloatArray]:
    """Mean, max and least-squares trend of temperature series, shape (..., n); NaN-aware.

    The slope is NaN without ``times_s`` (a trend needs a time base) or with < 2 readings.
    """
    t_c = np.asarray(temps_c, dtype=np.float64)
    if t_c.ndim == 0:
        raise ValueError("temps_c needs a last axis of readings")
    valid = np.isfinite(t_c)
    count = valid.sum(axis=-1)
    has_any = count > 0
    filled = np.where(valid, t_c, 0.0)
    mean = np.where(has_any, filled.sum(axis=-1) / np.maximum(count, 1), np.nan)
    max_c = np.where(has_any, np.max(np.where(valid, t_c, -np.inf), axis=-1), np.nan)

    if times_s is None:
        slope = np.full(t_c.shape[:-1], np.nan)
    else:
        t_s = np.broadcast_to(np.asarray(times_s, dtype=np.float64), t_c.shape)
        valid = valid & np.isfinite(t_s)
        n = valid.sum(axis=-1)
        n_safe = np.maximum(n, 1)
        t_mean = np.where(valid, t_s, 0.0).sum(axis=-1) / n_safe
        y_mean = np.where(valid, t_c, 0.0).sum(axis=-1) / n_safe
        dt = np.where(valid, t_s - t_mean[..., np.newaxis], 0.0)
        dy = np.where(valid, t_c - y_mean[..., np.newaxis], 0.0)
        sxx = np.sum(dt * dt, axis=-1)
        ok = (n >= 2) & (sxx > 0)
        slope = np.where(ok, np.sum(dt * dy, axis=-1) / np.where(ok, sxx, 1.0), np.nan) * 3600.0
    return {
        "temperature_c": np.asarray(mean, dtype=np.float64),
        "temperature_max_c": np.asarray(max_c, dtype=np.float64),
        "temperature_slope_c_per_h": np.asarray(slope, dtype=np.float64),
    }
