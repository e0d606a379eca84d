"""A simulated rotating machine: phase-continuous 3-axis acceleration, scalars and ground truth.

Vibration = healthy baseline (residual 1×/2×, broadband structural noise, a low floor) +
the fault's signature scaled by its damage. Amplitudes are calibrated analytically so the
healthy velocity RMS sits at ``healthy_severity`` × the ISO B/C boundary and the worst
channel reaches 1.1 × the C/D boundary exactly at the failure time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from models.bearing import DefectFrequencies
from simulators.degradation import Degradation, ThermalLag
from simulators.faults import Signature, base_frequency_hz, signature
from simulators.signals import (
    AntiAlias,
    BandNoise,
    ImpactTrain,
    SpeedProfile,
    ToneBank,
    tone_velocity_rms_mms,
)
from simulators.spec import (
    ISO_ZONE_LIMITS_MMS,
    SLIP_FACTOR_RANGE,
    FaultMode,
    MachineSpec,
    iso_zone,
)

__all__ = ["DEFAULT_SAMPLE_RATE_HZ", "GroundTruth", "Machine"]

FloatArray = NDArray[np.float64]
DEFAULT_SAMPLE_RATE_HZ = 25_600.0
#: Worst-channel velocity at the failure time, relative to the zone C/D boundary.
FAILURE_SEVERITY = 1.1
_BASE_GAINS = np.array([1.0, 0.8, 0.35])  # residual imbalance: radial H > V >> axial
_HF_GAINS = np.array([1.0, 0.9, 0.7])
_HF_BAND_HZ = (1000.0, 10_000.0)
_FLOOR_BAND_HZ = (30.0, 2000.0)
_BASE_FLOOR_RMS_MS2 = 0.04
_THERMAL_TAU_H = 0.5
_VOLTAGE_V, _POWER_FACTOR, _EFFICIENCY = 400.0, 0.86, 0.92


@dataclass(frozen=True)
class GroundTruth:
    """What the machine really is at one age: the answer the models should find."""

    age_h: float
    fault_mode: str
    damage: float
    health_index: float
    rul_h: float
    onset_time_h: float | None
    failure_time_h: float | None
    #: Realism: defect frequencies / kinematic, the failing point, the operating point now.
    defect_factor: float = 1.0
    failing_point: str | None = None
    speed_rpm: float | None = None
    load_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "defect_factor": self.defect_factor,
            "failing_point": self.failing_point,
            "speed_rpm": self.speed_rpm,
            "load_pct": self.load_pct,
            "age_h": self.age_h,
            "fault_mode": self.fault_mode,
            "damage": self.damage,
            "health_index": self.health_index,
            "rul_h": None if math.isinf(self.rul_h) else self.rul_h,
            "onset_time_h": self.onset_time_h,
            "failure_time_h": self.failure_time_h,
        }


def _maybe(f: Callable[[float], float], x: float | None) -> float | None:
    return None if x is None else f(x)


def _bank(
    freqs: FloatArray, phasors: NDArray[np.complex128], fs: float,
    envelope: Callable[[FloatArray], FloatArray] | None,
    profile: SpeedProfile | None = None, *, fault: bool = False,
) -> ToneBank:
    return ToneBank(freqs, np.abs(phasors), np.angle(phasors), fs, envelope,
                    profile=profile, fault=fault)


def _bearing_load(load_pct: float) -> float:
    # A bearing carries the rotor's weight even unloaded: contact force ∝ 0.3 + 0.7 × load.
    return 0.3 + 0.7 * load_pct / 100.0


def _power_law(p: float) -> Callable[[FloatArray], FloatArray]:
    def envelope(d: FloatArray) -> FloatArray:
        return np.asarray(np.power(d, p), dtype=np.float64)

    return envelope


class Machine:
    """One machine from a `MachineSpec`; `render(n)` returns the next n samples (channels, n).

    The waveform clock starts at sample 0 = ``spec.start_age_h``; machine age advances
    ``time_scale`` seconds per waveform second. Channels are the three axes of one point, or
    one radial channel per measurement point of a multi-point spec.
    """

    def __init__(
        self,
        spec: MachineSpec,
        *,
        sample_rate_hz: float | None = None,
        channels: int | None = None,
    ) -> None:
        layout = len(spec.points) or 3
        channels = layout if channels is None else channels
        if not 1 <= channels <= layout:
            raise ValueError(f"channels must be 1..{layout}, got {channels}")
        rate = sample_rate_hz or spec.sample_rate_hz or DEFAULT_SAMPLE_RATE_HZ
        if rate < 2_000.0:
            raise ValueError(f"sample_rate_hz must be >= 2000 (ISO band to 1 kHz), got {rate}")
        self.spec = spec
        self.sample_rate_hz = float(rate)
        self.channels = channels
        self.point_ids = spec.point_ids[:channels]
        self.sample_index = 0
        self.degradation = Degradation(spec.fault, spec.onset_h, spec.failure_h)
        self.signature: Signature = signature(spec.fault)
        seeds = np.random.SeedSequence(spec.seed).spawn(7)
        physics = np.random.default_rng(seeds[0])
        self._scalar_rng = np.random.default_rng(seeds[1])
        realism = np.random.default_rng(seeds[6])
        fs = self.sample_rate_hz

        drawn = float(realism.uniform(*SLIP_FACTOR_RANGE))
        self.defect_factor = spec.defect_factor or (drawn if spec.slip else 1.0)
        kinematic = spec.failing_bearing.defect_frequencies(spec.shaft_hz)
        self.kinematic_defects = kinematic
        self.defects = DefectFrequencies(*(f * self.defect_factor for f in kinematic))

        if spec.points:
            n = len(spec.points)
            base_gains, hf_gains = np.ones(n), np.ones(n)
            fault_gains = self.signature.channel_gains[0] * np.array(spec.transmission_gains())
            spread = np.power(1.11, np.arange(n, dtype=np.float64))
        else:
            base_gains, hf_gains = _BASE_GAINS, _HF_GAINS
            fault_gains = np.array(self.signature.channel_gains)
            spread = np.array([1.0, 1.11, 1.23])
        self._fault_gains = fault_gains
        self.hf_rms_ms2 = float(physics.uniform(0.7, 1.5))
        resonance = spec.resonance_hz or float(physics.uniform(2500.0, 4500.0))
        self.resonances_hz = resonance * spread
        # A real front end cannot see a resonance above its passband: it is missing, not moved.
        self._resonance_seen = (
            (self.resonances_hz < 0.4 * fs).astype(np.float64) if spec.band_limited
            else np.ones(layout)
        )
        self._anti_alias = AntiAlias(fs, layout) if spec.band_limited else None
        self.profile = self._speed_profile()
        self._hf = BandNoise(_HF_BAND_HZ, self.hf_rms_ms2 * hf_gains, fs,
                             np.random.default_rng(seeds[2]), physical=spec.band_limited)
        self._floor = BandNoise(_FLOOR_BAND_HZ, _BASE_FLOOR_RMS_MS2 * hf_gains, fs,
                                np.random.default_rng(seeds[3]))
        self._floor_v = self._floor.velocity_rms_mms_per_ms2()
        hf_v = self._hf.velocity_rms_mms_per_ms2()
        self._noise_v2 = (hf_gains * self.hf_rms_ms2 * hf_v) ** 2 + (
            hf_gains * _BASE_FLOOR_RMS_MS2 * self._floor_v
        ) ** 2
        # One phase per shaft order and channel, shared by baseline and fault tones: a growing
        # imbalance adds to the residual one in phase rather than at a random angle.
        self._order_phase: dict[float, FloatArray] = {}
        self._phase_rng = physics

        # Healthy: residual 1× (and a little 2×) fills the velocity up to the target on H.
        limits = ISO_ZONE_LIMITS_MMS[(spec.iso_group, spec.foundation)]
        target = spec.healthy_severity * limits[1]
        base_shares = {1.0: 1.0, 2.0: 0.12}
        norm = math.sqrt(sum(w * w for w in base_shares.values()))
        tone_v = math.sqrt(max(target**2 - float(self._noise_v2[0]), (0.2 * target) ** 2))
        self._base_freqs, self._base_ph = self._phasors(
            [(spec.shaft_hz * k, tone_v * w / norm) for k, w in base_shares.items()],
            base_gains, quadrature=True,
        )
        self._baseline = _bank(self._base_freqs, self._base_ph, fs, None, self.profile)

        self._impacts: ImpactTrain | None = None
        self._fault_tones: ToneBank | None = None
        self._fault_floor: BandNoise | None = None
        self._fault_freqs = np.empty(0)
        self._fault_ph = np.zeros((layout, 0), dtype=np.complex128)
        self._impact_v2 = np.zeros(layout)
        self.fault_scale_mms = 0.0
        if spec.fault is not FaultMode.NONE:
            self._build_fault(limits[2] * FAILURE_SEVERITY, seeds[4:])
        self.healthy_velocity_mms = self._velocity(0.0, 0.0)

        self._thermal = ThermalLag(self._temperature_target(spec.start_age_h), _THERMAL_TAU_H)

    # -- construction -------------------------------------------------------------------

    def _speed_profile(self) -> SpeedProfile | None:
        """Speed and load segments of the load steps, on the waveform clock (None: constant)."""
        s = self.spec
        if not s.load_steps:
            return None
        bounds = np.array([self.wall_seconds_to_age(st.at_h) for st in s.load_steps])
        speeds = np.array([s.speed_rpm, *(st.speed_rpm for st in s.load_steps)])
        loads = np.array([s.load_pct, *(st.load_pct for st in s.load_steps)])
        r = speeds / s.speed_rpm
        contact = np.array([_bearing_load(x) for x in loads]) / _bearing_load(s.load_pct)
        # Shaft-order forces (residual and growing imbalance, misalignment) ∝ speed²; a bearing
        # defect's impacts ∝ impact speed × √(contact force).
        fault = r * np.sqrt(contact) if s.fault.is_bearing else r**2
        return SpeedProfile(bounds, r, r**2, fault)

    def _phasors(
        self, lines: list[tuple[float, float]], gains: FloatArray, *, quadrature: bool
    ) -> tuple[FloatArray, NDArray[np.complex128]]:
        """Tones given as (frequency, velocity RMS mm/s on a gain-1 channel) → accel phasors."""
        freqs = np.array([f for f, _ in lines])
        accel = np.array([v / 1000.0 * math.sqrt(2.0) * 2.0 * math.pi * f for f, v in lines])
        phases = np.empty((gains.size, freqs.size))
        for i, f in enumerate(freqs):
            key = round(f / self.spec.shaft_hz, 6)
            if key not in self._order_phase and self.spec.points:
                # Points along the shaft see the same force at their own phase.
                self._order_phase[key] = self._phase_rng.uniform(0.0, 2.0 * math.pi, gains.size)
            elif key not in self._order_phase:
                h = self._phase_rng.uniform(0.0, 2.0 * math.pi)
                # A rotating force is seen 90° later by the vertical sensor; axial is unrelated.
                v = h - math.pi / 2 if quadrature else h + self._phase_rng.normal(0.0, 0.3)
                self._order_phase[key] = np.array([h, v, self._phase_rng.uniform(0, 2 * math.pi)])
            phases[:, i] = self._order_phase[key]
        return freqs, gains[:, None] * accel[None, :] * np.exp(1j * phases)

    def _build_fault(self, failure_v: float, seeds: list[np.random.SeedSequence]) -> None:
        sig = self.signature
        gains = self._fault_gains
        fs = self.sample_rate_hz
        if sig.impacts is not None:
            spec = sig.impacts
            rate = base_frequency_hz(spec.base, self.spec.shaft_hz, self.defects) * spec.rate_factor
            mod_hz = (
                base_frequency_hz(spec.modulation, self.spec.shaft_hz, self.defects)
                if spec.modulation else 0.0
            )
            self._impacts = ImpactTrain(
                rate, sig.impact_strength * self.hf_rms_ms2, gains, self.resonances_hz, fs,
                rng=np.random.default_rng(seeds[0]), envelope=_power_law(0.5),
                modulation_hz=mod_hz, modulation_depth=spec.modulation_depth,
                pattern=spec.pattern, active=self._resonance_seen, profile=self.profile,
            )
            self._impact_v2 = np.array([
                (self._impacts.amplitude_ms2 * self._impacts.velocity_rms_mms_per_ms2(c)) ** 2
                for c in range(gains.size)
            ])
        lines = []
        for line in sig.lines:
            f = line.order * base_frequency_hz(line.base, self.spec.shaft_hz, self.defects)
            lines.append((f + line.offset_orders * self.spec.shaft_hz, line.weight))
        self._fault_freqs, self._fault_ph = self._phasors(
            lines, gains, quadrature=sig.phases_quadrature
        )
        # Scale so the first channel to get there reaches the failure velocity at damage 1.
        hi = 10.0 * failure_v
        while np.max(self._velocity(1.0, hi)) < failure_v:
            hi *= 10.0
        s = optimize.brentq(lambda x: float(np.max(self._velocity(1.0, x))) - failure_v, 0.0, hi)
        self.fault_scale_mms = float(s)
        envelope = _power_law(sig.growth_power)
        self._fault_tones = _bank(self._fault_freqs, self._fault_ph * s, fs, envelope,
                                  self.profile, fault=True)
        if sig.floor_weight:
            rms = s * sig.floor_weight / self._floor_v
            self._fault_floor = BandNoise(_FLOOR_BAND_HZ, rms * gains, fs,
                                          np.random.default_rng(seeds[1]), envelope=envelope)

    def _velocity(
        self, damage: ArrayLike, scale_mms: float, segment: ArrayLike | None = None
    ) -> FloatArray:
        """Analytic band velocity RMS per channel, shape (*damage.shape, channels).

        ``segment`` (same shape as ``damage``) is the speed segment of each value.
        """
        if self.profile is not None and segment is not None:
            d_all = np.asarray(damage, dtype=np.float64)
            seg = np.broadcast_to(np.asarray(segment), d_all.shape)
            out = np.empty((*d_all.shape, self._fault_gains.size))
            for k in np.unique(seg):
                sel = seg == k
                out[sel] = self._velocity_at(d_all[sel], scale_mms, int(k))
            return out
        return self._velocity_at(damage, scale_mms, None)

    def _velocity_at(self, damage: ArrayLike, scale_mms: float, segment: int | None) -> FloatArray:
        sig = self.signature
        d = np.asarray(damage, dtype=np.float64)[..., None, None]
        grow = np.power(d, sig.growth_power)
        ratio, amp_tone, amp_fault = 1.0, 1.0, 1.0
        if self.profile is not None and segment is not None:
            ratio = float(self.profile.ratios[segment])
            amp_tone = float(self.profile.amp_tone[segment])
            amp_fault = float(self.profile.amp_fault[segment])
        freqs = np.concatenate([self._base_freqs, self._fault_freqs])
        # Coincident lines add as phasors, as they do in the waveform.
        keys, inverse = np.unique(np.round(freqs, 6), return_inverse=True)
        merge = (inverse[:, None] == np.arange(keys.size)[None, :]).astype(np.float64)
        base = amp_tone * self._base_ph @ merge[: self._base_freqs.size]
        fault = amp_fault * self._fault_ph @ merge[self._base_freqs.size :]
        per_unit = np.array([tone_velocity_rms_mms(1.0, float(f) * ratio) for f in keys])
        summed = base + fault * (scale_mms * grow)
        v2 = np.sum((np.abs(summed) * per_unit) ** 2, axis=-1) + self._noise_v2
        grow2 = grow[..., 0]
        d2 = d[..., 0]
        floor = scale_mms * sig.floor_weight * grow2 * self._fault_gains
        impacts = d2 * self._impact_v2 * amp_fault**2 * ratio
        return np.asarray(np.sqrt(v2 + floor**2 + impacts), dtype=np.float64)

    # -- clocks and ground truth -----------------------------------------------------------

    def age_h_at(self, sample_index: ArrayLike) -> FloatArray:
        """Machine age (hours) at waveform sample indices."""
        t_s = np.asarray(sample_index, dtype=np.float64) / self.sample_rate_hz
        return self.spec.start_age_h + self.spec.time_scale * t_s / 3600.0

    @property
    def age_h(self) -> float:
        return float(self.age_h_at(self.sample_index))

    def wall_seconds_to_age(self, age_h: float) -> float:
        """Waveform (wall) seconds from sample 0 until the machine reaches ``age_h``."""
        return (age_h - self.spec.start_age_h) * 3600.0 / self.spec.time_scale

    def ground_truth(self, age_h: float | None = None) -> GroundTruth:
        a = self.age_h if age_h is None else age_h
        d = self.degradation
        speed, load = self.spec.operating_point(a)
        return GroundTruth(
            defect_factor=self.defect_factor,
            failing_point=(
                self.spec.failing_point_id if self.spec.fault.is_bearing and self.spec.points
                else None
            ),
            speed_rpm=speed,
            load_pct=load,
            age_h=a,
            fault_mode=str(self.spec.fault),
            damage=float(d.damage(a)),
            health_index=float(d.health_index(a)),
            rul_h=float(d.rul_h(a)),
            onset_time_h=d.onset_time_h,
            failure_time_h=d.failure_time_h,
        )

    def expected_velocity_rms_mms(self, age_h: ArrayLike) -> FloatArray:
        """Calibrated (noise-free) velocity RMS per channel at ages: shape (..., channels)."""
        d = self.degradation.damage(age_h)
        seg = None
        if self.profile is not None:
            seg = self.profile.segment(
                (np.asarray(age_h, dtype=np.float64) - self.spec.start_age_h)
                * 3600.0 / self.spec.time_scale
            )
        return self._velocity(d, self.fault_scale_mms, seg)[..., : self.channels]

    def expected_accel_rms_ms2(self, age_h: ArrayLike) -> FloatArray:
        """Calibrated acceleration RMS per channel at ages (noise-free): shape (..., channels)."""
        d = self.degradation.damage(age_h)[..., None]
        sig = self.signature
        grow = d ** (2 * sig.growth_power)
        p2 = np.sum(np.abs(self._base_ph) ** 2, axis=1) / 2.0 + self._hf.rms_ms2**2
        p2 = p2 + self._floor.rms_ms2**2 + 0.0 * d  # broadcast to the ages' shape
        if self._fault_tones is not None:
            p2 = p2 + grow * np.sum(self._fault_tones.amplitudes_ms2**2, axis=1) / 2.0
        if self._fault_floor is not None:
            p2 = p2 + grow * self._fault_floor.rms_ms2**2
        if self._impacts is not None:
            p2 = p2 + d * self._impacts.rms_ms2_at_full() ** 2
        return np.asarray(np.sqrt(p2)[..., : self.channels], dtype=np.float64)

    # -- waveform -----------------------------------------------------------------------

    def render(self, n: int) -> FloatArray:
        """The next ``n`` samples of acceleration (m/s²), shape (channels, n)."""
        start = self.sample_index
        damage = self.degradation.damage(self.age_h_at(start + np.arange(n)))
        out = self._baseline.render(start, n, damage)
        out += self._hf.render(start, n, damage)
        out += self._floor.render(start, n, damage)
        if self._fault_tones is not None:
            out += self._fault_tones.render(start, n, damage)
        if self._fault_floor is not None:
            out += self._fault_floor.render(start, n, damage)
        if self._impacts is not None:
            out += self._impacts.render(
                start, n, lambda t: self.degradation.damage(self.age_h_at(t * self.sample_rate_hz))
            )
        if self._anti_alias is not None:
            out = self._anti_alias.render(out)
        self.sample_index = start + n
        return out[: self.channels]

    def skip(self, n: int) -> None:
        """Let ``n`` samples of machine time pass unrecorded (a burst sensor between captures)."""
        if n < 0:
            raise ValueError(f"cannot skip a negative number of samples, got {n}")
        self.sample_index += n
        if self._impacts is not None:
            self._impacts.skip(self.sample_index)

    # -- scalars ------------------------------------------------------------------------

    def _temperature_target(self, age_h: float) -> float:
        s = self.spec
        d = float(self.degradation.damage(age_h))
        friction = self.signature.friction_heating_c * d
        load = s.operating_point(age_h)[1]
        return s.ambient_c + s.load_heating_c * load / 100.0 + friction

    def scalars(self, age_h: float | None = None) -> dict[str, float]:
        """Slow quantities at an age (default: now): temperature lags its target by τ = 0.5 h."""
        a = self.age_h if age_h is None else age_h
        s = self.spec
        d = float(self.degradation.damage(a))
        temperature = self._thermal.step(a, self._temperature_target(a))
        speed, load = s.operating_point(a)
        # Friction losses grow with damage; the drive sees them as a little more power.
        power_kw = s.rated_power_kw * load / 100.0 * (1.0 + 0.05 * d)
        current_a = power_kw * 1000.0 / (math.sqrt(3.0) * _VOLTAGE_V * _POWER_FACTOR * _EFFICIENCY)
        noise = self._scalar_rng.normal(0.0, 1.0, 4)
        return {
            "temperature_c": temperature + 0.05 * float(noise[0]),
            "speed_rpm": speed * (1.0 + 0.0005 * float(noise[1])),
            "load_pct": load,
            "power_kw": power_kw * (1.0 + 0.002 * float(noise[2])),
            "current_a": current_a * (1.0 + 0.002 * float(noise[3])),
        }

    # -- description --------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Physics and ground-truth timeline as a JSON-ready dict."""
        s = self.spec
        d = self.degradation
        ages = [s.start_age_h]
        if d.onset_time_h is not None and d.failure_time_h is not None:
            ages += [d.onset_time_h, d.failure_time_h]
        grid = np.linspace(s.start_age_h, max(ages) * 1.05 + 1.0, 2001)
        worst = np.max(self.expected_velocity_rms_mms(grid), axis=-1)
        zones = [iso_zone(float(v), s.iso_group, s.foundation) for v in worst]
        first = {z: float(grid[zones.index(z)]) for z in "ABCD" if z in zones}
        timeline: dict[str, Any] = {
            **d.describe(),
            "expected_zone_entry_h": first,
            "wall_s_to_onset": _maybe(self.wall_seconds_to_age, d.onset_time_h),
            "wall_s_to_failure": _maybe(self.wall_seconds_to_age, d.failure_time_h),
        }
        return {
            "spec": s.to_dict(),
            "shaft_hz": s.shaft_hz,
            "defect_frequencies_hz": self.defects._asdict(),
            "kinematic_defect_frequencies_hz": self.kinematic_defects._asdict(),
            "defect_factor": self.defect_factor,
            "defect_orders": s.failing_bearing.defect_orders()._asdict(),
            "sample_rate_hz": self.sample_rate_hz,
            "band_limited": s.band_limited,
            "channels": list(self.point_ids),
            "failing_point": s.failing_point_id if s.points else None,
            "transmission_gains": list(s.transmission_gains()[: self.channels]),
            "load_steps": [asdict(st) for st in s.load_steps],
            "resonances_hz": [float(f) for f in self.resonances_hz[: self.channels]],
            "iso_zone_limits_mms": list(ISO_ZONE_LIMITS_MMS[(s.iso_group, s.foundation)]),
            "healthy_velocity_rms_mms": [
                float(v) for v in self.healthy_velocity_mms[: self.channels]
            ],
            "ground_truth": timeline,
        }
