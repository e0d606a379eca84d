"""Physics-based health assessment: ISO 10816-3 severity zones and fault diagnosis.

No training: bearing faults are recognised from envelope-spectrum lines at the kinematic
defect frequencies, shaft faults from shaft-order lines in the plain spectrum. Failure modes
are coded after ISO 14224 (failure mode ``VIB`` with the failure-mechanism code).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import median_filter

from models._envelope_tools import (
    coherent_line_ratios,
    line_ratios,
    squared_envelope_spectrum,
    whitened_spectrum,
)
from models.bearing import BearingLike, defect_orders
from models.features import _power_spectrum, extract_features

__all__ = [
    "ISO_10816_3_BOUNDARIES_MMS",
    "Diagnosis",
    "Fault",
    "Finding",
    "diagnose",
    "iso_zone",
]

FloatArray = NDArray[np.float64]
Foundation = Literal["rigid", "flexible"]

#: Zone boundaries A/B, B/C, C/D in mm/s RMS (ISO 10816-3, 10–1000 Hz), by (group, foundation).
ISO_10816_3_BOUNDARIES_MMS: dict[tuple[int, str], tuple[float, float, float]] = {
    (1, "rigid"): (2.3, 4.5, 7.1),
    (1, "flexible"): (3.5, 7.1, 11.0),
    (2, "rigid"): (1.4, 2.8, 4.5),
    (2, "flexible"): (2.3, 4.5, 7.1),
}


def iso_zone(
    velocity_rms_mms: ArrayLike, machine_group: int = 2, foundation: Foundation = "rigid"
) -> NDArray[np.str_]:
    """ISO 10816-3 evaluation zone 'A'–'D' per value (vectorised); '' where velocity is NaN."""
    key = (machine_group, foundation)
    if key not in ISO_10816_3_BOUNDARIES_MMS:
        raise ValueError(f"no ISO 10816-3 boundaries for group/foundation {key}")
    v = np.asarray(velocity_rms_mms, dtype=np.float64)
    idx = np.searchsorted(np.asarray(ISO_10816_3_BOUNDARIES_MMS[key]), v, side="right")
    zones = np.asarray(["A", "B", "C", "D"])[np.minimum(idx, 3)]
    return np.where(np.isnan(v), "", zones)


class Fault(StrEnum):
    """Diagnosable fault classes."""

    NONE = "none"
    BEARING_OUTER_RACE = "bearing_outer_race"
    BEARING_INNER_RACE = "bearing_inner_race"
    BEARING_BALL = "bearing_ball"
    BEARING_CAGE = "bearing_cage"
    IMBALANCE = "imbalance"
    MISALIGNMENT = "misalignment"
    LOOSENESS = "looseness"


# ISO 14224 (Table B.2 failure mechanisms): 2.6 fatigue, 1.2 vibration, 1.3 clearance/
# alignment failure, 1.5 looseness. Failure mode VIB (vibration) for all of them.
_ISO14224: dict[Fault, tuple[str, str, str]] = {
    Fault.NONE: ("", "", ""),
    Fault.BEARING_OUTER_RACE: ("VIB", "2.6", "bearing"),
    Fault.BEARING_INNER_RACE: ("VIB", "2.6", "bearing"),
    Fault.BEARING_BALL: ("VIB", "2.6", "bearing"),
    Fault.BEARING_CAGE: ("VIB", "2.6", "bearing"),
    Fault.IMBALANCE: ("VIB", "1.2", "rotor"),
    Fault.MISALIGNMENT: ("VIB", "1.3", "coupling"),
    Fault.LOOSENESS: ("VIB", "1.5", "mounting"),
}

_BEARING_FAULTS = {
    "bpfo": Fault.BEARING_OUTER_RACE,
    "bpfi": Fault.BEARING_INNER_RACE,
    "bsf": Fault.BEARING_BALL,
    "ftf": Fault.BEARING_CAGE,
}

#: Relative speed tolerance for line search: slip makes real defect lines 1–2 % off kinematics.
SPEED_TOLERANCE = 0.015
#: Harmonic-mean line-to-floor ratio (squared envelope of the pre-whitened signal) giving
#: confidence 0 and 1, log-linear in between. Whitening flattens the envelope floor, so pure
#: noise stays near 1.3 and a clear defect is 5–12.
_RATIO_NONE, _RATIO_SURE = 2.5, 10.0
#: Sidebands are looked for at the speed the carrier's harmonics chose, so only ±0.5 % slack.
_SIDEBAND_TOLERANCE = 0.005
#: Plain-spectrum line-to-floor ratio that counts a shaft harmonic or half order as present.
_SHAFT_LINE_RATIO = 6.0
#: Minimum confidence for a finding to be reported.
ALARM_CONFIDENCE = 0.2


@dataclass(frozen=True)
class Finding:
    """One suspected fault with its confidence (0–1) and the numbers that support it."""

    fault: Fault
    confidence: float
    evidence: dict[str, float] = field(default_factory=dict)

    @property
    def failure_mode_code(self) -> str:
        """ISO 14224 failure mode code (``VIB``)."""
        return _ISO14224[self.fault][0]

    @property
    def failure_mechanism_code(self) -> str:
        """ISO 14224 failure mechanism code, e.g. ``2.6`` (fatigue)."""
        return _ISO14224[self.fault][1]

    @property
    def maintainable_item(self) -> str:
        """ISO 14224 maintainable item the fault sits in."""
        return _ISO14224[self.fault][2]


@dataclass(frozen=True)
class Diagnosis:
    """Health assessment of one measurement: severity zone and ranked fault findings."""

    fault: Fault
    confidence: float
    iso_zone: str
    velocity_rms_mms: float
    findings: tuple[Finding, ...]
    evidence: dict[str, float]

    @property
    def failure_mode_code(self) -> str:
        """ISO 14224 failure mode of the top finding ('' when healthy)."""
        return _ISO14224[self.fault][0]

    @property
    def failure_mechanism_code(self) -> str:
        """ISO 14224 failure mechanism of the top finding ('' when healthy)."""
        return _ISO14224[self.fault][1]


def _confidence(ratio: float) -> float:
    if not math.isfinite(ratio) or ratio <= _RATIO_NONE:
        return 0.0
    return min(1.0, math.log(ratio / _RATIO_NONE) / math.log(_RATIO_SURE / _RATIO_NONE))


def _windows(x: FloatArray, fs: float, window_s: float) -> FloatArray:
    n = max(16, round(window_s * fs))
    if x.size < 2 * n:
        return x[np.newaxis, :]
    # Averaging spectra of windows (Welch) lowers the noise floor variance.
    return x[: x.size // n * n].reshape(-1, n)


def _line_ratio(
    freqs: FloatArray, amp: FloatArray, floor: FloatArray, target_hz: float
) -> tuple[float, float, float]:
    """(frequency, amplitude, ratio to the local floor) of the strongest line near target."""
    resolution = float(freqs[1] - freqs[0])
    sel = np.abs(freqs - target_hz) <= max(SPEED_TOLERANCE * target_hz, 1.5 * resolution)
    if target_hz <= 0 or not np.any(sel):
        return (math.nan, math.nan, math.nan)
    idx = np.flatnonzero(sel)[np.argmax(amp[sel])]
    return (float(freqs[idx]), float(amp[idx]), float(amp[idx] / max(floor[idx], 1e-300)))


def _averaged_amplitude(x: FloatArray, fs: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    freqs, power = _power_spectrum(x - x.mean(axis=-1, keepdims=True), fs)
    amp = np.sqrt(2.0 * power.mean(axis=0))
    # A running median estimates the broadband floor and ignores the discrete lines.
    floor = median_filter(amp, size=41, mode="nearest")
    return freqs, amp, floor


def candidate_bands(fs: float) -> list[tuple[float, float]]:
    """Demodulation bands to search (three widths, half-overlapping, 500 Hz to 0.48 fs).

    The resonance excited by the impacts is unknown a priori; like a protrugram, each band
    is tried and the one showing the clearest defect lines is kept.
    """
    bands: list[tuple[float, float]] = []
    for width in (fs / 6.0, fs / 12.0, fs / 24.0):
        lo = 500.0
        while lo + width <= 0.48 * fs:
            bands.append((lo, lo + width))
            lo += width / 2.0
    return bands


def _harmonic_targets(orders: dict[str, float]) -> dict[str, list[float]]:
    """Shaft orders scored per defect: 1×–3× of each, minus those another defect explains.

    3×BPFO lies within 0.7 % of 2×BPFI on most bearings (and 3×BSF near 2×BPFO); a line there
    says nothing about which defect it is, so it is left out of both harmonic sums.
    """
    races = {k: orders[k] for k in ("bpfo", "bpfi")}
    out: dict[str, list[float]] = {}
    for name, order in orders.items():
        # A ball defect strikes both races once per spin: even multiples of BSF carry it.
        ks = (2.0, 4.0) if name == "bsf" else (1.0, 2.0, 3.0)
        kept = []
        for k in ks:
            clash = any(
                abs(k * order - j * other) <= 2 * SPEED_TOLERANCE * k * order
                for other_name, other in races.items()
                if other_name != name
                for j in (1.0, 2.0, 3.0)
            )
            if not clash or k == ks[0]:
                kept.append(k * order)
        out[name] = kept
    return out


def _bearing_findings(
    windows: FloatArray, fs: float, shaft_hz: float, bearing: BearingLike
) -> list[Finding]:
    orders = defect_orders(bearing)._asdict()
    targets = _harmonic_targets(orders)
    n = windows.shape[-1]
    spec = whitened_spectrum(windows)
    # Highest line looked at (4×BSF or BPFI + 1× sideband at the top of the speed tolerance).
    max_hz = max(max(t) for t in targets.values()) * shaft_hz * (1 + 2 * SPEED_TOLERANCE)
    max_hz = max(max_hz, (orders["bpfi"] + 1.0) * shaft_hz * (1 + 2 * SPEED_TOLERANCE))
    best: dict[str, Finding] = {}
    for band in candidate_bands(fs):
        freqs, amp, floor = squared_envelope_spectrum(spec, n, fs, band, max_hz)
        ratio_spectrum = amp / floor
        found = {
            name: coherent_line_ratios(
                freqs, ratio_spectrum, np.asarray(targets[name]) * shaft_hz, SPEED_TOLERANCE
            )
            for name in orders
        }
        # Geometric mean over harmonics: one stray line cannot carry a diagnosis alone.
        scores = {
            name: float(np.exp(np.mean(np.log(np.maximum(np.nan_to_num(r, nan=1.0), 1e-3)))))
            for name, (_, _, r) in found.items()
        }
        # Sidebands sit at the speed the ball's own harmonics chose.
        speed = found["bsf"][0] * shaft_hz
        bsf_sidebands = (2.0 * orders["bsf"] + np.array([-1.0, 1.0]) * orders["ftf"]) * speed
        _, sb = line_ratios(freqs, amp, floor, bsf_sidebands, _SIDEBAND_TOLERANCE)
        # A spalled ball enters the load zone once per cage turn: its 2×BSF line counts
        # together with the cage modulation (sidebands or FTF lines), never on its own.
        cage = max(float(np.nanmax(sb, initial=0.0)), scores["ftf"])
        r_2bsf = float(np.nan_to_num(found["bsf"][2][0], nan=1.0))
        scores["bsf"] = max(scores["bsf"], math.sqrt(max(r_2bsf, 1e-3) * cage))
        for name, order in orders.items():
            factor, peak_hz, ratio = found[name]
            score = scores[name]
            if name in best and score <= best[name].evidence["score"]:
                continue
            evidence = {
                "score": score,
                "band_lo_hz": band[0],
                "band_hi_hz": band[1],
                "speed_factor": factor,
            }
            for k, f_k, r_k in zip(targets[name], peak_hz, ratio, strict=True):
                evidence[f"peak_{round(k / order)}x_hz"] = float(f_k)
                evidence[f"ratio_{round(k / order)}x"] = float(r_k)
            if name == "bpfi":
                # Inner-race load modulation: sidebands at ±1× shaft around BPFI.
                _, sb = line_ratios(
                    freqs,
                    amp,
                    floor,
                    (order + np.array([-1.0, 1.0])) * shaft_hz * factor,
                    _SIDEBAND_TOLERANCE,
                )
                evidence["sideband_lower_ratio"] = float(sb[0])
                evidence["sideband_upper_ratio"] = float(sb[1])
            best[name] = Finding(_BEARING_FAULTS[name], _confidence(score), evidence)
    return list(best.values())


def _shaft_findings(
    windows: FloatArray, fs: float, shaft_hz: float, velocity_mms: float, zone: str
) -> list[Finding]:
    freqs, amp, floor = _averaged_amplitude(windows, fs)
    lines = {k: _line_ratio(freqs, amp, floor, k * shaft_hz) for k in range(1, 11)}
    halves = [_line_ratio(freqs, amp, floor, (k + 0.5) * shaft_hz)[2] for k in range(1, 5)]
    a1, a2 = lines[1][1], lines[2][1]
    # Velocity (mm/s RMS) of the 1× line: its share of the overall ISO velocity.
    v1 = a1 / (2 * math.pi * shaft_hz) * 1000.0 / math.sqrt(2) if math.isfinite(a1) else 0.0
    share_1x = v1 / velocity_mms if velocity_mms > 0 else 0.0
    n_harmonics = sum(1 for k in range(3, 11) if lines[k][2] > _SHAFT_LINE_RATIO)
    n_half = sum(1 for r in halves if r > _SHAFT_LINE_RATIO)
    evidence = {
        **{f"order_{k}x_ms2": lines[k][1] for k in range(1, 4)},
        **{f"order_{k}x_ratio": lines[k][2] for k in range(1, 4)},
        "share_1x_of_velocity": share_1x,
        "ratio_2x_to_1x": a2 / a1 if a1 > 0 else math.nan,
        "n_high_harmonics": float(n_harmonics),
        "n_half_orders": float(n_half),
    }
    # Shaft faults only matter once the machine vibrates beyond the "new machine" zone A.
    severity = {"": 0.0, "A": 0.0, "B": 0.5, "C": 0.8, "D": 1.0}[zone]
    findings: list[Finding] = []
    ratio_2x_1x = evidence["ratio_2x_to_1x"]
    if severity > 0 and math.isfinite(ratio_2x_1x):
        if share_1x > 0.5 and ratio_2x_1x < 0.5:
            findings.append(Finding(Fault.IMBALANCE, severity * min(1.0, share_1x), evidence))
        if ratio_2x_1x >= 0.5:
            findings.append(Finding(Fault.MISALIGNMENT, severity * min(1.0, ratio_2x_1x), evidence))
        if n_harmonics >= 3 or n_half >= 2:
            score = min(1.0, (n_harmonics + n_half) / 8.0)
            findings.append(Finding(Fault.LOOSENESS, severity * score, evidence))
    return findings


def diagnose(
    waveform: ArrayLike,
    fs: float,
    *,
    shaft_hz: float,
    bearing: BearingLike | None = None,
    machine_group: int = 2,
    foundation: Foundation = "rigid",
    window_s: float = 1.0,
) -> Diagnosis:
    """Diagnose one acceleration record (m/s², 1-D) taken at a known shaft speed.

    Spectra are averaged over ``window_s`` windows. Findings below ALARM_CONFIDENCE are
    dropped; the top remaining finding is the diagnosis (``Fault.NONE`` if none).
    """
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"diagnose takes one 1-D record, got shape {x.shape}")
    if not math.isfinite(shaft_hz) or shaft_hz <= 0:
        raise ValueError(f"shaft_hz must be finite and > 0, got {shaft_hz!r}")
    windows = _windows(x, fs, window_s)
    velocity = float(np.mean(extract_features(windows, fs)["velocity_rms_mms"]))
    zone = str(iso_zone(velocity, machine_group, foundation))
    findings = _shaft_findings(windows, fs, shaft_hz, velocity, zone)
    if bearing is not None:
        findings += _bearing_findings(windows, fs, shaft_hz, bearing)
    ranked = sorted(findings, key=lambda f: f.confidence, reverse=True)
    reported = tuple(f for f in ranked if f.confidence >= ALARM_CONFIDENCE)
    top = reported[0] if reported else None
    evidence = {"velocity_rms_mms": velocity, "shaft_hz": shaft_hz}
    for f in ranked:
        evidence[f"{f.fault.value}_confidence"] = f.confidence
    return Diagnosis(
        fault=top.fault if top else Fault.NONE,
        confidence=top.confidence if top else 1.0 - (ranked[0].confidence if ranked else 0.0),
        iso_zone=zone,
        velocity_rms_mms=velocity,
        findings=reported,
        evidence=evidence,
    )
