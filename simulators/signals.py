"""Phase-continuous signal generators: tone banks, band-limited noise, resonant impact trains.

Each generator renders samples ``[start, start + n)`` of one infinite multi-channel signal.
Tones are closed-form in the sample index; noise and impacts keep filter state and draw
random numbers in time order, so rendering in blocks equals rendering in one piece.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import signal

__all__ = [
    "VELOCITY_BAND_HZ",
    "AntiAlias",
    "BandNoise",
    "ImpactTrain",
    "SpeedProfile",
    "ToneBank",
    "resonator",
    "tone_velocity_rms_mms",
    "velocity_rms_per_unit_variance",
]

FloatArray = NDArray[np.float64]
Envelope = Callable[[FloatArray], FloatArray]
"""Maps per-sample (or per-impact) damage to an amplitude multiplier."""

#: ISO 10816/20816 velocity band.
VELOCITY_BAND_HZ = (10.0, 1000.0)


def tone_velocity_rms_mms(accel_amplitude_ms2: float, freq_hz: float) -> float:
    """Velocity RMS (mm/s) of an acceleration sinusoid, 0 outside the ISO band."""
    lo, hi = VELOCITY_BAND_HZ
    if not lo <= freq_hz <= hi:
        return 0.0
    return 1000.0 * accel_amplitude_ms2 / (math.sqrt(2.0) * 2.0 * math.pi * freq_hz)


def _band_grid(fs: float) -> FloatArray:
    lo, hi = VELOCITY_BAND_HZ
    return np.geomspace(lo, min(hi, 0.49 * fs), 4000)


def velocity_rms_per_unit_variance(
    response: Callable[[FloatArray], FloatArray], fs: float
) -> float:
    """Band velocity RMS (mm/s) of a filter driven by a white sequence of unit variance.

    ``response(freqs_hz)`` gives the filter's complex response. One-sided PSD of the output is
    ``2/fs · |H|²``; velocity divides by (2πf)².
    """
    f = _band_grid(fs)
    psd = 2.0 / fs * np.abs(response(f)) ** 2
    return 1000.0 * math.sqrt(float(np.trapezoid(psd / (2.0 * np.pi * f) ** 2, f)))


def resonator(freq_hz: float, damping_ratio: float, fs: float) -> tuple[FloatArray, FloatArray]:
    """Second-order band-pass (zeros at DC and Nyquist) ringing at ``freq_hz``; peak ring = 1.

    Zeros at DC keep impact energy out of the velocity band, as in a real structure where the
    impact's low-frequency content is small next to its ringing.
    """
    w = 2.0 * math.pi * freq_hz / fs
    r = math.exp(-damping_ratio * w)
    a = np.array([1.0, -2.0 * r * math.cos(w), r * r])
    b = np.array([1.0, 0.0, -1.0])
    impulse = np.zeros(int(20 / (damping_ratio * w)) + 8)
    impulse[0] = 1.0
    peak = float(np.max(np.abs(signal.lfilter(b, a, impulse))))
    return b / peak, a


class SpeedProfile:
    """Piecewise-constant shaft speed over waveform time, as a ratio ``r`` to the nominal.

    Tones and impacts run on *shaft time* τ(t) = ∫ r dt, so a speed step keeps every line's
    phase continuous and moves its frequency by r. ``ratios[k]`` holds on
    ``[bounds_s[k-1], bounds_s[k])``; ``amp_tone``/``amp_fault`` are the amplitude multipliers
    per segment of shaft-order tones and of the fault's components.
    """

    def __init__(
        self,
        bounds_s: FloatArray,
        ratios: FloatArray,
        amp_tone: FloatArray,
        amp_fault: FloatArray,
    ) -> None:
        self.bounds_s = np.asarray(bounds_s, dtype=np.float64)
        self.ratios = np.asarray(ratios, dtype=np.float64)
        self.amp_tone = np.asarray(amp_tone, dtype=np.float64)
        self.amp_fault = np.asarray(amp_fault, dtype=np.float64)
        if self.ratios.size != self.bounds_s.size + 1 or np.any(self.ratios <= 0):
            raise ValueError("need one positive ratio more than bounds")
        # τ at each bound; the phase origin is arbitrary, only continuity matters.
        tau = np.zeros(self.bounds_s.size)
        for k in range(self.bounds_s.size):
            prev_t, prev_tau = (0.0, 0.0) if k == 0 else (self.bounds_s[k - 1], tau[k - 1])
            tau[k] = prev_tau + self.ratios[k] * (self.bounds_s[k] - prev_t)
        self._tau_bounds = tau

    def segment(self, t_s: FloatArray) -> NDArray[np.intp]:
        """Index into ``ratios`` of the segment each time falls in."""
        return np.asarray(np.searchsorted(self.bounds_s, t_s, side="right"), dtype=np.intp)

    def tau(self, t_s: FloatArray) -> FloatArray:
        """Shaft time at waveform times (seconds at the nominal speed)."""
        t = np.asarray(t_s, dtype=np.float64)
        k = self.segment(t)
        prev_t = np.concatenate([[0.0], self.bounds_s])[k]
        prev_tau = np.concatenate([[0.0], self._tau_bounds])[k]
        return np.asarray(prev_tau + self.ratios[k] * (t - prev_t), dtype=np.float64)

    def t_of_tau(self, tau: FloatArray) -> FloatArray:
        """Waveform time at shaft times (the inverse of `tau`)."""
        u = np.asarray(tau, dtype=np.float64)
        k = np.searchsorted(self._tau_bounds, u, side="right")
        prev_t = np.concatenate([[0.0], self.bounds_s])[k]
        prev_tau = np.concatenate([[0.0], self._tau_bounds])[k]
        return np.asarray(prev_t + (u - prev_tau) / self.ratios[k], dtype=np.float64)


class AntiAlias:
    """A sensor front end's anti-alias filter: flat to 0.4 fs, 80 dB down by 0.5 fs (stateful)."""

    def __init__(self, fs: float, channels: int) -> None:
        self.sos = signal.ellip(10, 0.05, 80.0, 0.4 * fs, btype="lowpass", fs=fs, output="sos")
        self._zi = np.zeros((self.sos.shape[0], channels, 2))

    def render(self, x: FloatArray) -> FloatArray:
        y, self._zi = signal.sosfilt(self.sos, x, axis=-1, zi=self._zi)
        return np.asarray(y, dtype=np.float64)


class ToneBank:
    """Sinusoids at fixed frequencies, amplitude per tone times an envelope of damage.

    ``amplitudes_ms2`` is (channels, tones); ``phases_rad`` likewise.
    """

    def __init__(
        self,
        freqs_hz: FloatArray,
        amplitudes_ms2: FloatArray,
        phases_rad: FloatArray,
        fs: float,
        envelope: Envelope | None = None,
        *,
        profile: SpeedProfile | None = None,
        fault: bool = False,
    ) -> None:
        self.profile = profile
        self.fault = fault
        self.freqs_hz = np.asarray(freqs_hz, dtype=np.float64)
        self.amplitudes_ms2 = np.asarray(amplitudes_ms2, dtype=np.float64)
        self.phases_rad = np.asarray(phases_rad, dtype=np.float64)
        self.fs = fs
        self.envelope = envelope
        # Tones above Nyquist would alias into the band; a real ADC's anti-alias filter drops them.
        top = 1.0 if profile is None else float(np.max(profile.ratios))
        self._keep = self.freqs_hz * top < 0.45 * fs

    def render(self, start: int, n: int, damage: FloatArray) -> FloatArray:
        t = (start + np.arange(n, dtype=np.float64)) / self.fs
        f = self.freqs_hz[self._keep]
        if f.size == 0:
            return np.zeros((self.amplitudes_ms2.shape[0], n))
        # (channels, tones, n) is small for the ~20 tones and 1024-25600 samples used here.
        if self.profile is not None:
            seg = self.profile.segment(t)
            t = self.profile.tau(t)
        arg = 2.0 * np.pi * f[None, :, None] * t[None, None, :]
        arg = arg + self.phases_rad[:, self._keep, None]
        out: FloatArray = np.einsum("ct,ctn->cn", self.amplitudes_ms2[:, self._keep], np.cos(arg))
        if self.profile is not None:
            amp = self.profile.amp_fault if self.fault else self.profile.amp_tone
            out *= amp[seg][None, :]
        if self.envelope is not None:
            out *= self.envelope(damage)[None, :]
        return out


class BandNoise:
    """Gaussian noise through a band-pass, with an RMS per channel times a damage envelope.

    ``physical=True``: ``rms_ms2`` is the RMS of the noise as it is in the structure, over its
    whole band; the rendered noise has that noise's density and simply lacks what lies above
    0.45 fs, as a band-limited sensor records it (an FIR matching the analog 2nd-order shape).
    """

    _TAPS = 255

    def __init__(
        self,
        band_hz: tuple[float, float],
        rms_ms2: FloatArray,
        fs: float,
        rng: np.random.Generator,
        *,
        envelope: Envelope | None = None,
        order: int = 2,
        physical: bool = False,
    ) -> None:
        self.rms_ms2 = np.asarray(rms_ms2, dtype=np.float64)
        self.fs = fs
        self.rng = rng
        self.envelope = envelope
        self.taps: FloatArray | None = None
        if physical:
            b, a = signal.butter(order, [2.0 * math.pi * f for f in band_hz], btype="bandpass",
                                 analog=True)
            grid = np.geomspace(1.0, 50.0 * band_hz[1], 20_000)
            power = np.abs(signal.freqs(b, a, worN=2.0 * math.pi * grid)[1]) ** 2
            total = float(np.trapezoid(power, grid))
            f = np.linspace(0.0, fs / 2.0, 513)
            mag = np.abs(signal.freqs(b, a, worN=2.0 * math.pi * f)[1])
            self.taps = np.asarray(signal.firwin2(self._TAPS, f, mag, fs=fs), dtype=np.float64)
            # White noise of unit variance has one-sided density 2/fs; the structure's noise
            # has |H(f)|² / ∫|H|² per unit power.
            self.gain = math.sqrt(fs / (2.0 * total))
            self._zi = np.zeros((self.rms_ms2.size, self._TAPS - 1))
            return
        hi = min(band_hz[1], 0.45 * fs)
        self.sos = signal.butter(order, (band_hz[0], hi), btype="bandpass", fs=fs, output="sos")
        _, h = signal.sosfreqz(self.sos, worN=8192)
        # Unit-variance input gives mean(|H|²) output power; normalise to unit RMS.
        self.gain = 1.0 / math.sqrt(float(np.mean(np.abs(h) ** 2)))
        self._zi = np.zeros((self.sos.shape[0], self.rms_ms2.size, 2))

    def velocity_rms_mms_per_ms2(self) -> float:
        """Band velocity RMS per 1 m/s² of this noise's acceleration RMS."""

        def response(f: FloatArray) -> FloatArray:
            if self.taps is not None:
                fir: FloatArray = signal.freqz(self.taps, 1.0, worN=f, fs=self.fs)[1]
                return fir * self.gain
            h: FloatArray = signal.sosfreqz(self.sos, worN=f, fs=self.fs)[1]
            return h * self.gain

        return velocity_rms_per_unit_variance(response, self.fs)

    def render(self, start: int, n: int, damage: FloatArray) -> FloatArray:
        del start  # state-carrying: blocks must be rendered in order
        # Draw (n, channels) so the stream is in time order whatever the block size.
        white = self.rng.standard_normal((n, self.rms_ms2.size)).T
        if self.taps is not None:
            out, self._zi = signal.lfilter(self.taps, 1.0, white, axis=-1, zi=self._zi)
        else:
            out, self._zi = signal.sosfilt(self.sos, white, axis=-1, zi=self._zi)
        out = out * (self.gain * self.rms_ms2[:, None])
        if self.envelope is not None:
            out *= self.envelope(damage)[None, :]
        return np.asarray(out, dtype=np.float64)


class ImpactTrain:
    """Impacts at a mean rate with random interval jitter, each ringing a structural resonance.

    Per-impact amplitude = ``amplitude_ms2`` × envelope(damage at the impact) × modulation
    (1 + depth·cos(2π f_mod t + φ)) × the repeating ``pattern`` (e.g. a ball alternately hitting
    the inner and the outer race). Jitter accumulates (slip), as in a real bearing.
    """

    _BATCH = 256  # impact times are drawn in fixed batches so block size cannot change them

    def __init__(
        self,
        rate_hz: float,
        amplitude_ms2: float,
        channel_gains: FloatArray,
        resonances_hz: FloatArray,
        fs: float,
        *,
        rng: np.random.Generator,
        envelope: Envelope | None = None,
        jitter: float = 0.015,
        damping_ratio: float = 0.04,
        modulation_hz: float = 0.0,
        modulation_depth: float = 0.0,
        pattern: tuple[float, ...] = (1.0,),
        active: FloatArray | None = None,
        profile: SpeedProfile | None = None,
    ) -> None:
        self.profile = profile
        self.rate_hz = rate_hz
        self.amplitude_ms2 = amplitude_ms2
        self.channel_gains = np.asarray(channel_gains, dtype=np.float64)
        self.fs = fs
        self.rng = rng
        self.envelope = envelope
        self.jitter = jitter
        self.modulation_hz = modulation_hz
        self.modulation_depth = modulation_depth
        self.pattern = np.asarray(pattern, dtype=np.float64)
        self._mod_phase = float(rng.uniform(0.0, 2.0 * math.pi))
        nyq_safe = 0.4 * fs  # keep the ring well below Nyquist at low sample rates
        self.filters = [resonator(min(f, nyq_safe), damping_ratio, fs) for f in resonances_hz]
        # 0 for a channel whose resonance a band-limited sensor cannot see.
        self.active = (np.ones(len(self.filters)) if active is None
                       else np.asarray(active, dtype=np.float64))
        self._zi = [np.zeros(2) for _ in self.filters]
        self._times = np.empty(0)
        self._count = 0  # impacts emitted so far, for the pattern
        self._last_t = float(rng.uniform(0.0, 1.0 / rate_hz))
        self._first = True

    def _extend(self) -> None:
        intervals = (1.0 + self.jitter * self.rng.standard_normal(self._BATCH)) / self.rate_hz
        intervals = np.maximum(intervals, 0.2 / self.rate_hz)
        if self._first:
            intervals[0] = 0.0
            self._first = False
        times = self._last_t + np.cumsum(intervals)
        self._last_t = float(times[-1])
        self._times = np.concatenate([self._times, times])

    def mean_power_per_amplitude(self) -> float:
        """Mean excitation power per sample for amplitude 1 (before the resonator)."""
        pattern_power = float(np.mean(self.pattern**2))
        return self.rate_hz / self.fs * pattern_power * (1.0 + self.modulation_depth**2 / 2.0)

    def rms_ms2_at_full(self) -> FloatArray:
        """Steady-state acceleration RMS per channel at envelope 1."""
        energy = []
        for b, a in self.filters:
            impulse = np.zeros(4096)
            impulse[0] = 1.0
            energy.append(float(np.sum(signal.lfilter(b, a, impulse) ** 2)))
        power = self.mean_power_per_amplitude() * np.asarray(energy)
        gains = self.channel_gains * self.active
        return np.asarray(self.amplitude_ms2 * gains * np.sqrt(power), np.float64)

    def velocity_rms_mms_per_ms2(self, channel: int) -> float:
        """Band velocity RMS of a channel per 1 m/s² of impact amplitude (steady state)."""
        b, a = self.filters[channel]

        def response(f: FloatArray) -> FloatArray:
            h: FloatArray = signal.freqz(b, a, worN=f, fs=self.fs)[1]
            return h

        unit = velocity_rms_per_unit_variance(response, self.fs)
        gain = float(self.channel_gains[channel] * self.active[channel])
        return unit * math.sqrt(self.mean_power_per_amplitude()) * gain

    def render(
        self, start: int, n: int, damage_at: Callable[[FloatArray], FloatArray]
    ) -> FloatArray:
        """Render a block; ``damage_at(times_s)`` gives damage at each impact's own time."""
        # Impact times are drawn in shaft time, so a speed step changes their rate.
        end_t = self._tau((start + n - 0.5) / self.fs)
        while self._times.size == 0 or self._times[-1] < end_t:
            self._extend()
        k = int(np.searchsorted(self._times, end_t))
        shaft_times, self._times = self._times[:k], self._times[k:]
        times = shaft_times if self.profile is None else self.profile.t_of_tau(shaft_times)
        idx = np.clip(np.rint(times * self.fs).astype(np.int64) - start, 0, n - 1)
        amps = self.amplitude_ms2 * self.pattern[(self._count + np.arange(k)) % self.pattern.size]
        self._count += k
        if self.profile is not None:
            amps = amps * self.profile.amp_fault[self.profile.segment(times)]
        if self.modulation_depth:
            phase = 2.0 * np.pi * self.modulation_hz * shaft_times + self._mod_phase
            amps = amps * (1.0 + self.modulation_depth * np.cos(phase))
        if self.envelope is not None:
            amps = amps * self.envelope(damage_at(times))
        excitation = np.zeros(n)
        np.add.at(excitation, idx, amps)
        out = np.empty((len(self.filters), n))
        for c, (b, a) in enumerate(self.filters):
            y, self._zi[c] = signal.lfilter(b, a, excitation, zi=self._zi[c])
            out[c] = self.channel_gains[c] * self.active[c] * y
        return out

    def _tau(self, t_s: float) -> float:
        return t_s if self.profile is None else float(self.profile.tau(np.array([t_s]))[0])

    def skip(self, start: int) -> None:
        """Forget impacts before sample ``start``: the sensor did not capture them."""
        cut = self._tau((start - 0.5) / self.fs)
        while self._times.size == 0 or self._times[-1] < cut:
            self._times = np.empty(0)
            self._extend()
        k = int(np.searchsorted(self._times, cut))
        self._count += k
        self._times = self._times[k:]
