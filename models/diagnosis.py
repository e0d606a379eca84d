"""Physics-based health assessment: ISO 10816-3 severity zones and fault diagnosis.

No training: bearing faults are recognised from envelope-spectrum lines near the kinematic
defect frequencies (searched over slip and speed uncertainty), shaft faults from shaft-order
lines in the plain spectrum. "Healthy" needs positive evidence (low level, no impulses, no
line structure); a sick signal that matches no known family is ``unexplained``. Failure
modes are coded after ISO 14224 (failure mode ``VIB`` with the failure-mechanism code).
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
from models._health_evidence import HEALTH_LIMITS, health_evidence
from models._spectral_lines import LineFamily, line_families, shaft_speed_from_spectrum
from models.bearing import BearingLike, defect_orders
from models.features import _power_spectrum, extract_features

__all__ = [
    "HEALTH_LIMITS",
    "ISO_10816_3_BOUNDARIES_MMS",
    "Diagnosis",
    "Fault",
    "Finding",
    "LineFamily",
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
    #: Impulsive, elevated or line-structured vibration that matches no known fault family.
    UNEXPLAINED = "unexplained"


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
    # Vibration is the failure mode; the mechanism is not known yet.
    Fault.UNEXPLAINED: ("VIB", "", ""),
}

_BEARING_FAULTS = {
    "bpfo": Fault.BEARING_OUTER_RACE,
    "bpfi": Fault.BEARING_INNER_RACE,
    "bsf": Fault.BEARING_BALL,
    "ftf": Fault.BEARING_CAGE,
}

#: Relative tolerance of the defect-line search around the configured (nominal) speed: slip
#: puts real lines 1–3 % off kinematics and a nameplate speed is itself a few % off.
SPEED_TOLERANCE = 0.04
#: Tolerance left once the speed is measured (tachometer, or the shaft line in the spectrum):
#: slip only.
SLIP_TOLERANCE = 0.03
#: How far from the nominal speed the shaft line is looked for in the spectrum.
SPEED_SEARCH = 0.05
#: Plain-spectrum 1×–3× comb strength (geometric-mean line-to-floor) that counts as a
#: measured shaft speed.
_SHAFT_COMB_RATIO = 4.0
#: Harmonic-mean line-to-floor ratio (squared envelope of the pre-whitened signal) giving
#: confidence 0 and 1, log-linear in between. Whitening flattens the envelope floor, so pure
#: noise stays near 1.3 and a clear defect is 5–12. Calibrated on 2 s segments of the CWRU
#: records (bench/cwru_diagnosis.py): every top bearing finding scoring 5 or more named the
#: right defect, one in three between 3.5 and 4.5 did not.
_RATIO_NONE, _RATIO_SURE = 2.85, 6.0
#: Sidebands are looked for at the speed the carrier's harmonics chose, so only ±0.5 % slack.
_SIDEBAND_TOLERANCE = 0.005
#: Plain-spectrum line-to-floor ratio that counts a shaft harmonic or half order as present.
_SHAFT_LINE_RATIO = 6.0
#: Minimum confidence for a finding to be reported.
ALARM_CONFIDENCE = 0.2
#: Misalignment needs a real 2× level: its velocity at least this share of the zone A/B limit.
MISALIGNMENT_2X_SHARE_OF_AB = 0.3

#: Without the asset's healthy level, health can only be this sure.
_NO_BASELINE_CAP = 0.6
#: "Unexplained" says the machine is not healthy, not which fault it has: on the CWRU records
#: every such call was on a faulty bearing, so the statement starts fairly sure.
_UNEXPLAINED_FLOOR = 0.7


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
    #: Strongest envelope line families (orders of the shaft speed used), strongest first.
    line_families: tuple[LineFamily, ...] = ()

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


_Spectra = list[tuple[tuple[float, float], FloatArray, FloatArray, FloatArray]]


def _envelope_spectra(windows: FloatArray, fs: float, max_hz: float) -> _Spectra:
    """(band, freqs, amplitude, floor) of the squared envelope in every candidate band."""
    n = windows.shape[-1]
    spec = whitened_spectrum(windows)
    return [
        (band, *squared_envelope_spectrum(spec, n, fs, band, max_hz))
        for band in candidate_bands(fs)
    ]


def _max_envelope_hz(shaft_hz: float, bearing: BearingLike | None, tolerance: float) -> float:
    """Highest envelope frequency any search needs: defect harmonics, sidebands, 15 orders."""
    top = 15.0
    if bearing is not None:
        orders = defect_orders(bearing)._asdict()
        targets = _harmonic_targets(orders)
        top = max(top, *(max(t) for t in targets.values()), orders["bpfi"] + 1.0)
    return top * shaft_hz * (1 + 2 * tolerance)


def _bearing_findings(
    windows: FloatArray,
    fs: float,
    shaft_hz: float,
    bearing: BearingLike,
    *,
    tolerance: float = SPEED_TOLERANCE,
    spectra: _Spectra | None = None,
) -> list[Finding]:
    """One finding per defect family: the band and common speed factor (within ±tolerance)
    where its harmonics (and sidebands) stand highest above the envelope floor."""
    orders = defect_orders(bearing)._asdict()
    targets = _harmonic_targets(orders)
    if spectra is None:
        spectra = _envelope_spectra(windows, fs, _max_envelope_hz(shaft_hz, bearing, tolerance))
    best: dict[str, Finding] = {}
    for band, freqs, amp, floor in spectra:
        ratio_spectrum = amp / floor
        found = {
            name: coherent_line_ratios(
                freqs, ratio_spectrum, np.asarray(targets[name]) * shaft_hz, tolerance
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
        # Inner-race load modulation: ±1× shaft sidebands around BPFI, at the found speed.
        # A BPFI line with both sidebands is as consistent as a line with its harmonics.
        _, bpfi_sb = line_ratios(
            freqs,
            amp,
            floor,
            (orders["bpfi"] + np.array([-1.0, 1.0])) * shaft_hz * found["bpfi"][0],
            _SIDEBAND_TOLERANCE,
        )
        r_bpfi = float(np.nan_to_num(found["bpfi"][2][0], nan=1.0))
        sb_pair = np.maximum(np.nan_to_num(bpfi_sb, nan=1.0), 1e-3)
        with_sidebands = float(np.exp(np.mean(np.log(np.r_[max(r_bpfi, 1e-3), sb_pair]))))
        scores["bpfi"] = max(scores["bpfi"], with_sidebands)
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
                evidence["sideband_lower_ratio"] = float(bpfi_sb[0])
                evidence["sideband_upper_ratio"] = float(bpfi_sb[1])
            best[name] = Finding(_BEARING_FAULTS[name], _confidence(score), evidence)
    return list(best.values())


def _envelope_families(spectra: _Spectra, shaft_hz: float) -> tuple[LineFamily, ...]:
    """Strongest envelope line families of the band where the strongest comb stands out."""
    best: list[LineFamily] = []
    for _, freqs, amp, floor in spectra:
        fams = line_families(freqs, amp / floor, shaft_hz)
        if fams and (not best or fams[0].score > best[0].score):
            best = fams
    return tuple(best)


def _unexplained_dominant(
    families: tuple[LineFamily, ...], bearing: BearingLike, tolerance: float
) -> LineFamily | None:
    """The strongest envelope family that is neither a shaft harmonic nor a defect line.

    A defect family only counts as the explanation when no such family stands higher: a
    weaker coincidence within the (wide) search tolerance must not name a fault while the
    signal's dominant periodicity is something else.
    """
    o = defect_orders(bearing)
    known = [o.bpfo, o.bpfi, o.bsf, 2.0 * o.bsf, o.ftf]
    for fam in families:
        if abs(fam.order - round(fam.order)) <= 0.02 * max(fam.order, 1.0):
            continue  # running-speed modulation, common to healthy machines
        explained = any(
            abs(fam.order / (k * ref) - 1.0) <= tolerance + 0.01
            for ref in known
            for k in (1.0, 2.0, 3.0)
        )
        return None if explained else fam
    return None


def _shaft_findings(
    windows: FloatArray,
    fs: float,
    shaft_hz: float,
    velocity_mms: float,
    zone: str,
    *,
    ab_limit_mms: float,
) -> list[Finding]:
    freqs, amp, floor = _averaged_amplitude(windows, fs)
    lines = {k: _line_ratio(freqs, amp, floor, k * shaft_hz) for k in range(1, 11)}
    halves = [_line_ratio(freqs, amp, floor, (k + 0.5) * shaft_hz)[2] for k in range(1, 5)]
    a1, a2 = lines[1][1], lines[2][1]
    # Velocity (mm/s RMS) of the 1× and 2× lines: their share of the overall ISO velocity.
    v1 = a1 / (2 * math.pi * shaft_hz) * 1000.0 / math.sqrt(2) if math.isfinite(a1) else 0.0
    v2 = a2 / (4 * math.pi * shaft_hz) * 1000.0 / math.sqrt(2) if math.isfinite(a2) else 0.0
    share_1x = v1 / velocity_mms if velocity_mms > 0 else 0.0
    n_harmonics = sum(1 for k in range(3, 11) if lines[k][2] > _SHAFT_LINE_RATIO)
    n_half = sum(1 for r in halves if r > _SHAFT_LINE_RATIO)
    evidence = {
        **{f"order_{k}x_ms2": lines[k][1] for k in range(1, 4)},
        **{f"order_{k}x_ratio": lines[k][2] for k in range(1, 4)},
        "share_1x_of_velocity": share_1x,
        "velocity_2x_mms": v2,
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
        # A ratio alone is no misalignment: a small 2× over a smaller 1× is a healthy rig.
        level_2x = v2 / (MISALIGNMENT_2X_SHARE_OF_AB * ab_limit_mms)
        if ratio_2x_1x >= 0.5 and level_2x >= 1.0:
            confidence = severity * min(1.0, ratio_2x_1x) * min(1.0, level_2x / 2.0)
            findings.append(Finding(Fault.MISALIGNMENT, confidence, evidence))
        if n_harmonics >= 3 or n_half >= 2:
            score = min(1.0, (n_harmonics + n_half) / 8.0)
            findings.append(Finding(Fault.LOOSENESS, severity * score, evidence))
    return findings


def _measured_speed(windows: FloatArray, fs: float, nominal_hz: float) -> float | None:
    """Shaft speed from the 1×–3× comb of the plain spectrum near the nominal speed."""
    freqs, amp, floor = _averaged_amplitude(windows, fs)
    found = shaft_speed_from_spectrum(
        freqs, amp / np.maximum(floor, 1e-300), nominal_hz, SPEED_SEARCH, _SHAFT_COMB_RATIO
    )
    return None if found is None else found[0]


def diagnose(
    waveform: ArrayLike,
    fs: float,
    *,
    shaft_hz: float,
    bearing: BearingLike | None = None,
    machine_group: int = 2,
    foundation: Foundation = "rigid",
    window_s: float = 1.0,
    measured_shaft_hz: float | None = None,
    baseline_rms_ms2: float | None = None,
) -> Diagnosis:
    """Diagnose one acceleration record (m/s², 1-D) of a machine whose nominal speed is known.

    ``measured_shaft_hz`` (a tachometer reading) narrows the defect search to slip; without
    it the shaft line is looked for in the spectrum near ``shaft_hz``. ``baseline_rms_ms2``,
    the asset's healthy acceleration RMS, lets an elevated level count against health.
    Spectra are averaged over ``window_s`` windows. Findings below ALARM_CONFIDENCE are
    dropped; the top remaining finding is the diagnosis. With none: ``Fault.NONE`` only on
    positive evidence of health, else ``Fault.UNEXPLAINED``.
    """
    x = np.asarray(waveform, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"diagnose takes one 1-D record, got shape {x.shape}")
    if not math.isfinite(shaft_hz) or shaft_hz <= 0:
        raise ValueError(f"shaft_hz must be finite and > 0, got {shaft_hz!r}")
    key = (machine_group, foundation)
    if key not in ISO_10816_3_BOUNDARIES_MMS:
        raise ValueError(f"no ISO 10816-3 boundaries for group/foundation {key}")
    windows = _windows(x, fs, window_s)
    velocity = float(np.mean(extract_features(windows, fs)["velocity_rms_mms"]))
    zone = str(iso_zone(velocity, machine_group, foundation))
    if measured_shaft_hz is not None and math.isfinite(measured_shaft_hz) and measured_shaft_hz > 0:
        speed, source, tolerance = float(measured_shaft_hz), 2.0, SLIP_TOLERANCE
    else:
        found = _measured_speed(windows, fs, shaft_hz)
        speed, source = (shaft_hz, 0.0) if found is None else (found, 1.0)
        tolerance = SPEED_TOLERANCE
    # A constant record has no spectrum to read (a dead or disconnected sensor).
    live = bool(np.any(np.ptp(windows, axis=-1) > 0))
    max_hz = _max_envelope_hz(speed, bearing, tolerance)
    spectra = _envelope_spectra(windows, fs, max_hz) if live else []
    findings = _shaft_findings(
        windows, fs, speed, velocity, zone, ab_limit_mms=ISO_10816_3_BOUNDARIES_MMS[key][0]
    )
    if bearing is not None and live:
        findings += _bearing_findings(
            windows, fs, speed, bearing, tolerance=tolerance, spectra=spectra
        )
    families = _envelope_families(spectra, speed)
    dominant = None if bearing is None else _unexplained_dominant(families, bearing, tolerance)
    if dominant is not None:
        findings = [
            Finding(f.fault, 0.0, {**f.evidence, "outscored_by_order": dominant.order})
            if f.fault in _BEARING_FAULTS.values() and f.evidence["score"] < dominant.score
            else f
            for f in findings
        ]
    health_values, health, abnormal = health_evidence(windows, zone, families, baseline_rms_ms2)
    ranked = sorted(findings, key=lambda f: f.confidence, reverse=True)
    reported = [f for f in ranked if f.confidence >= ALARM_CONFIDENCE]
    evidence = {
        "velocity_rms_mms": velocity,
        "shaft_hz": shaft_hz,
        "speed_used_hz": speed,
        # 0 nominal (configured), 1 read from the spectrum's shaft line, 2 tachometer.
        "speed_source": source,
        **health_values,
        "health_margin": health,
        "abnormality": abnormal,
    }
    for f in ranked:
        evidence[f"{f.fault.value}_confidence"] = f.confidence
    if reported:
        fault, confidence = reported[0].fault, reported[0].confidence
    elif abnormal > 0.0 or (math.isfinite(health) and health <= 0.0):
        # Sick, but no known family explains it: say so, never "healthy".
        confidence = _UNEXPLAINED_FLOOR + (1.0 - _UNEXPLAINED_FLOOR) * abnormal
        fault = Fault.UNEXPLAINED
        reported = [Finding(Fault.UNEXPLAINED, confidence, dict(evidence))]
    else:
        fault = Fault.NONE
        confidence = 0.0 if not math.isfinite(health) else 0.5 + 0.5 * health
        if baseline_rms_ms2 is None:
            confidence = min(confidence, _NO_BASELINE_CAP)
    return Diagnosis(
        fault=fault,
        confidence=confidence,
        iso_zone=zone,
        velocity_rms_mms=velocity,
        findings=tuple(reported),
        evidence=evidence,
        line_families=families,
    )
