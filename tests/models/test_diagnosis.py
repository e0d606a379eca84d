"""Physics diagnosis: ISO zones and fault recognition on synthetic signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models._envelope_tools import (
    coherent_line_ratios,
    line_ratios,
    squared_envelope_spectrum,
    whitened_spectrum,
)
from models.bearing import SKF_6205
from models.diagnosis import Fault, _bearing_findings, diagnose, iso_zone

FS = 12_000.0
N = 6 * 12_000
T = np.arange(N) / FS
SHAFT = 29.95


def impacts(rate_hz: float, modulation_hz: float | None = None, seed: int = 0) -> np.ndarray:
    """Resonance (3 kHz) rung at ``rate_hz``, optionally amplitude-modulated, plus noise."""
    rng = np.random.default_rng(seed)
    x = np.zeros(N)
    times = np.arange(0.0, N / FS, 1.0 / rate_hz)
    gains = np.ones(times.size)
    if modulation_hz is not None:
        gains = 1.0 + 0.8 * np.cos(2 * np.pi * modulation_hz * times)
    x[(times * FS).astype(int)] = gains
    ring = np.exp(-600.0 * T[:240]) * np.sin(2 * np.pi * 3000.0 * T[:240])
    return 20.0 * np.convolve(x, ring)[:N] + rng.normal(0.0, 0.5, N)


@pytest.mark.parametrize(
    ("v", "group", "foundation", "zone"),
    [
        (1.0, 2, "rigid", "A"),
        (1.4, 2, "rigid", "B"),
        (3.0, 2, "rigid", "C"),
        (4.6, 2, "rigid", "D"),
        (2.2, 1, "rigid", "A"),
        (7.0, 1, "flexible", "B"),
        (11.5, 1, "flexible", "D"),
        (4.0, 2, "flexible", "B"),
    ],
)
def test_iso_zone_boundaries(v: float, group: int, foundation: str, zone: str) -> None:
    assert str(iso_zone(v, group, foundation)) == zone  # type: ignore[arg-type]


def test_iso_zone_is_vectorised_and_nan_aware() -> None:
    zones = iso_zone(np.array([[0.5, 2.0], [np.nan, 9.0]]))
    assert zones.tolist() == [["A", "B"], ["", "D"]]
    with pytest.raises(ValueError):
        iso_zone(1.0, 3, "rigid")


def test_outer_race_defect_is_diagnosed() -> None:
    bpfo = SKF_6205.defect_orders().bpfo * SHAFT * 0.99  # 1 % slip
    d = diagnose(impacts(bpfo), FS, shaft_hz=SHAFT, bearing=SKF_6205)
    assert d.fault is Fault.BEARING_OUTER_RACE
    assert d.confidence > 0.5
    assert d.failure_mode_code == "VIB"
    assert d.failure_mechanism_code == "2.6"
    assert d.findings[0].evidence["peak_1x_hz"] == pytest.approx(bpfo, abs=1.0)


def test_inner_race_defect_with_shaft_sidebands_is_diagnosed() -> None:
    bpfi = SKF_6205.defect_orders().bpfi * SHAFT
    d = diagnose(impacts(bpfi, modulation_hz=SHAFT), FS, shaft_hz=SHAFT, bearing=SKF_6205)
    assert d.fault is Fault.BEARING_INNER_RACE
    top = d.findings[0]
    assert top.evidence["sideband_lower_ratio"] > 2  # whitened floor of noise is ≈1.3
    assert top.evidence["sideband_upper_ratio"] > 3


def test_healthy_noise_raises_no_alarm() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, N) + 0.05 * np.sin(2 * np.pi * SHAFT * T)
    d = diagnose(x, FS, shaft_hz=SHAFT, bearing=SKF_6205)
    assert d.fault is Fault.NONE
    assert d.findings == ()
    assert d.iso_zone == "A"


def test_imbalance_needs_severity_and_a_dominant_1x() -> None:
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 0.2, N)
    # 1× at 3 m/s² → ≈11 mm/s RMS: zone D for group 2.
    loud = diagnose(noise + 3.0 * np.sin(2 * np.pi * SHAFT * T), FS, shaft_hz=SHAFT)
    assert loud.fault is Fault.IMBALANCE
    assert loud.iso_zone == "D"
    quiet = diagnose(noise + 0.05 * np.sin(2 * np.pi * SHAFT * T), FS, shaft_hz=SHAFT)
    assert quiet.fault is Fault.NONE


def test_strong_2x_is_misalignment() -> None:
    rng = np.random.default_rng(5)
    x = (
        rng.normal(0.0, 0.2, N)
        + 2.0 * np.sin(2 * np.pi * SHAFT * T)
        + 3.0 * np.sin(2 * np.pi * 2 * SHAFT * T + 0.4)
    )
    d = diagnose(x, FS, shaft_hz=SHAFT)
    assert d.fault is Fault.MISALIGNMENT
    assert d.evidence["velocity_rms_mms"] > 4.5
    assert d.findings[0].evidence["ratio_2x_to_1x"] == pytest.approx(1.5, rel=0.05)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        diagnose(np.zeros((2, 100)), FS, shaft_hz=SHAFT)
    with pytest.raises(ValueError):
        diagnose(np.zeros(1000), FS, shaft_hz=math.nan)


def test_prewhitening_removes_a_strong_shaft_line_but_keeps_bpfo() -> None:
    bpfo = SKF_6205.defect_orders().bpfo * SHAFT
    # A 1× line 40 dB above the impacts would dominate any envelope that is not whitened.
    x = impacts(bpfo) + 200.0 * np.sin(2 * np.pi * SHAFT * T)
    windows = x.reshape(-1, 12_000)
    spec = whitened_spectrum(windows)
    freqs = np.fft.rfftfreq(12_000, 1.0 / FS)
    line = np.argmin(np.abs(freqs - SHAFT))
    assert np.abs(spec[:, line]).max() == pytest.approx(1.0)
    freqs, amp, floor = squared_envelope_spectrum(spec, 12_000, FS, (500.0, 5_500.0), 400.0)
    _, ratio = line_ratios(freqs, amp, floor, np.array([bpfo, 2 * bpfo]), 0.015)
    assert np.all(ratio > 3)
    d = diagnose(x, FS, shaft_hz=SHAFT, bearing=SKF_6205)
    assert Fault.BEARING_OUTER_RACE in {f.fault for f in d.findings}


def test_ball_fault_with_cage_modulation_ranks_ball_first() -> None:
    orders = SKF_6205.defect_orders()
    # A spalled ball strikes both races once per spin (2×BSF) and is carried round by the
    # cage, so its load, hence the impact strength, is modulated at FTF.
    x = impacts(2 * orders.bsf * SHAFT, modulation_hz=orders.ftf * SHAFT, seed=7)
    findings = _bearing_findings(x.reshape(-1, 12_000), FS, SHAFT, SKF_6205)
    scores = {f.fault: f.evidence["score"] for f in findings}
    # Modulation spreads the line into sidebands, so this weak fault stays below the alarm,
    # but the ball hypothesis is clearly the best of the four.
    assert max(scores, key=lambda k: scores[k]) is Fault.BEARING_BALL
    assert scores[Fault.BEARING_BALL] > 1.4 * max(
        v for k, v in scores.items() if k is not Fault.BEARING_BALL
    )


def test_line_ratios_are_nan_beyond_the_spectrum() -> None:
    freqs = np.arange(0.0, 100.0)
    amp = np.ones(100)
    amp[50] = 10.0
    hz, ratio = line_ratios(freqs, amp, np.ones(100), np.array([50.4, 500.0]), 0.015)
    assert hz[0] == 50.0 and ratio[0] == 10.0
    assert math.isnan(ratio[1])


def test_one_speed_factor_is_searched_for_the_whole_harmonic_family() -> None:
    freqs = np.arange(0.0, 1000.0)
    ratio = np.ones(1000)
    ratio[[101, 202, 303]] = 8.0  # the defect at 1 % above the nominal 100 Hz
    ratio[[99, 198]] = 20.0  # stronger but unrelated lines, not a coherent family
    factor, hz, r = coherent_line_ratios(freqs, ratio, np.array([100.0, 200.0, 300.0]), 0.015)
    assert factor == pytest.approx(1.01, abs=0.002)
    assert hz.tolist() == [101.0, 202.0, 303.0]
    assert np.all(r == 8.0)


def test_slipping_outer_race_fault_reports_its_speed_factor() -> None:
    bpfo = SKF_6205.defect_orders().bpfo * SHAFT * 0.99
    d = diagnose(impacts(bpfo), FS, shaft_hz=SHAFT, bearing=SKF_6205)
    assert d.findings[0].evidence["speed_factor"] == pytest.approx(0.99, abs=0.003)


FS20 = 20_000.0
SHAFT20 = 2000.0 / 60.0


def impact_train(
    rate_hz: float, fs: float, seconds: float = 4.0, gain: float = 20.0, seed: int = 0
) -> np.ndarray:
    """A 4.5 kHz resonance rung at ``rate_hz`` plus unit-variance noise at rate ``fs``."""
    rng = np.random.default_rng(seed)
    n = round(seconds * fs)
    t = np.arange(n) / fs
    x = np.zeros(n)
    x[(np.arange(0.0, seconds, 1.0 / rate_hz) * fs).astype(int)] = 1.0
    ring_t = t[: round(0.004 * fs)]
    ring = np.exp(-900.0 * ring_t) * np.sin(2 * np.pi * 4500.0 * ring_t)
    return gain * np.convolve(x, ring)[:n] + rng.normal(0.0, 1.0, n)


def test_20khz_outer_race_line_3_percent_below_kinematic_is_outer_race() -> None:
    bpfo = SKF_6205.defect_orders().bpfo * SHAFT20 * 0.97  # slip and load angle: 3 % low
    d = diagnose(impact_train(bpfo, FS20), FS20, shaft_hz=SHAFT20, bearing=SKF_6205)
    assert d.fault is Fault.BEARING_OUTER_RACE
    assert d.confidence > 0.5
    assert d.findings[0].evidence["speed_factor"] == pytest.approx(0.97, abs=0.004)
    assert d.findings[0].evidence["peak_1x_hz"] == pytest.approx(bpfo, abs=1.0)


def test_a_tachometer_speed_centres_the_search() -> None:
    # The machine runs 6 % below its nameplate: out of reach of the nominal search (±4 %),
    # found once the measured speed is passed in.
    true_speed = SHAFT20 * 0.94
    x = impact_train(SKF_6205.defect_orders().bpfi * true_speed, FS20, seed=1)
    d = diagnose(x, FS20, shaft_hz=SHAFT20, bearing=SKF_6205, measured_shaft_hz=true_speed)
    assert d.fault is Fault.BEARING_INNER_RACE
    assert d.evidence["speed_source"] == 2.0
    assert d.evidence["speed_used_hz"] == true_speed


def test_the_shaft_line_in_the_spectrum_replaces_a_wrong_nominal_speed() -> None:
    true_speed = SHAFT20 * 1.035
    t = np.arange(round(4 * FS20)) / FS20
    shaft = sum(0.5 / k * np.sin(2 * np.pi * k * true_speed * t) for k in (1, 2, 3))
    x = impact_train(SKF_6205.defect_orders().bpfo * true_speed, FS20, seed=2) + shaft
    d = diagnose(x, FS20, shaft_hz=SHAFT20, bearing=SKF_6205)
    assert d.evidence["speed_source"] == 1.0
    assert d.evidence["speed_used_hz"] == pytest.approx(true_speed, rel=0.003)
    assert d.fault is Fault.BEARING_OUTER_RACE


def test_impulsive_signal_far_above_healthy_with_no_bearing_line_is_unexplained() -> None:
    rng = np.random.default_rng(5)
    healthy = rng.normal(0.0, 1.0, round(4 * FS20))
    baseline = float(np.std(healthy))
    # Impacts at 4.27× shaft (no 6205 defect within 9 %) at ~7× the healthy RMS.
    sick = impact_train(4.27 * SHAFT20, FS20, gain=35.0, seed=6)
    ratio = float(np.std(sick)) / baseline
    assert 6.0 <= ratio <= 8.0
    for known in (baseline, None):
        d = diagnose(sick, FS20, shaft_hz=SHAFT20, bearing=SKF_6205, baseline_rms_ms2=known)
        assert d.fault is Fault.UNEXPLAINED
        assert d.confidence >= 0.7
        assert d.findings[0].fault is Fault.UNEXPLAINED
        assert d.failure_mode_code == "VIB"
        # Its strongest line family, as an order of shaft speed.
        assert d.line_families[0].order == pytest.approx(4.27, abs=0.05)
        assert d.evidence["family_1_order"] == pytest.approx(4.27, abs=0.05)
    fine = diagnose(healthy, FS20, shaft_hz=SHAFT20, bearing=SKF_6205, baseline_rms_ms2=baseline)
    assert fine.fault is Fault.NONE
    assert fine.confidence > 0.5


def test_an_elevated_level_alone_is_not_health() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(0.0, 3.0, N)  # Gaussian, no lines, but 3× the asset's healthy RMS
    d = diagnose(x, FS, shaft_hz=SHAFT, bearing=SKF_6205, baseline_rms_ms2=1.0)
    assert d.fault is Fault.UNEXPLAINED
    assert d.evidence["accel_rms_ratio"] == pytest.approx(3.0, rel=0.05)
    # Without the healthy level, the same signal reads healthy, but never with certainty.
    unknown = diagnose(x, FS, shaft_hz=SHAFT, bearing=SKF_6205)
    assert unknown.fault is Fault.NONE
    assert unknown.confidence <= 0.6


def test_healthy_rig_with_a_small_2x_line_is_not_misalignment() -> None:
    rng = np.random.default_rng(9)
    # Zone B from broadband running noise; 1× and 2× both small (2×/1× = 1.2 in acceleration).
    noise = np.convolve(rng.normal(0.0, 1.0, N), np.ones(12) / 12.0, mode="same") * 3.3
    x = noise + 0.05 * np.sin(2 * np.pi * SHAFT * T) + 0.06 * np.sin(2 * np.pi * 2 * SHAFT * T)
    d = diagnose(x, FS, shaft_hz=SHAFT)
    assert d.iso_zone == "B"
    assert Fault.MISALIGNMENT not in {f.fault for f in d.findings}
    assert d.fault is not Fault.MISALIGNMENT


def test_a_constant_signal_is_no_evidence_of_health() -> None:
    d = diagnose(np.zeros(N), FS, shaft_hz=SHAFT, bearing=SKF_6205)
    assert d.fault is Fault.NONE
    assert d.confidence == 0.0


@pytest.mark.parametrize("age_h", [70.0, 90.0])
def test_a_developing_simulated_misalignment_still_reads_misalignment(age_h: float) -> None:
    """The absolute 2× level must not hide a real misalignment still in zone B."""
    from simulators.machine import Machine
    from simulators.spec import FaultMode, MachineSpec

    spec = MachineSpec(
        fault=FaultMode.MISALIGNMENT, onset_h=0.0, failure_h=100.0, start_age_h=age_h, seed=0
    )
    x = Machine(spec, sample_rate_hz=25_600.0, channels=1).render(2 * 25_600)[0]
    d = diagnose(x, 25_600.0, shaft_hz=spec.speed_rpm / 60.0, bearing=spec.bearing)
    assert d.fault is Fault.MISALIGNMENT
    assert d.findings[0].evidence["velocity_2x_mms"] > 0.42


def test_line_families_report_combs_not_their_harmonics_or_lone_lines() -> None:
    from models._spectral_lines import line_families

    freqs = np.arange(0.0, 600.0)
    ratio = np.ones(600)
    ratio[[40, 80, 120]] = 6.0  # a comb at 40 Hz
    ratio[[97, 194, 291]] = 4.0  # a weaker comb at 97 Hz
    ratio[55] = 20.0  # one strong lone line
    fams = line_families(freqs, ratio, shaft_hz=25.0)
    assert [round(f.fundamental_hz) for f in fams[:2]] == [40, 97]
    assert fams[0].order == pytest.approx(1.6)
    assert fams[0].score == pytest.approx(6.0)
    assert all(round(f.fundamental_hz) not in (80, 120) for f in fams)
    assert line_families(freqs, np.ones(600), shaft_hz=25.0) == []


def test_shaft_speed_is_read_from_the_comb_between_bins() -> None:
    from models._spectral_lines import shaft_speed_from_spectrum

    freqs = np.arange(0.0, 500.0) * 0.5
    true_hz = 30.6
    ratio = np.ones(500)
    for k in (1, 2, 3):
        # Two bins share each line, weighted by distance: the peak lies between them.
        pos = k * true_hz / 0.5
        lo = int(np.floor(pos))
        ratio[lo] += 10.0 * (1.0 - (pos - lo))
        ratio[lo + 1] += 10.0 * (pos - lo)
    found = shaft_speed_from_spectrum(freqs, ratio, 30.0, 0.05, 4.0)
    assert found is not None
    assert found[0] == pytest.approx(true_hz, abs=0.1)
    assert shaft_speed_from_spectrum(freqs, np.ones(500), 30.0, 0.05, 4.0) is None
