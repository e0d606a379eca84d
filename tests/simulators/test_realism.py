"""Reality's tricks in the simulator: slip, band-limited sensors, shafts with several bearings,
load steps. Each property is measured on the rendered waveform, against the ground truth."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from ironwatch.physics import AssetPhysics
from models.features import envelope_spectrum, extract_features
from simulators import BEARINGS, Machine, MachineSpec, load_spec
from simulators.spec import (
    SLIP_FACTOR_RANGE,
    FaultMode,
    LoadStep,
    PointSpec,
    SpecError,
)

FS = 25_600.0
FloatArray = npt.NDArray[np.float64]


def peak_hz(freqs: npt.NDArray[np.floating], amps: FloatArray, lo: float, hi: float) -> float:
    """Frequency of the strongest line in [lo, hi], refined by a parabola through 3 bins."""
    sel = np.flatnonzero((freqs >= lo) & (freqs <= hi))
    i = int(sel[np.argmax(amps[sel])])
    a, b, c = np.log(amps[i - 1 : i + 2])
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    return float(freqs[i] + shift * (freqs[1] - freqs[0]))


# -- slip: defect lines off the kinematic frequencies ------------------------------------------

@pytest.mark.parametrize(
    ("fault", "defect", "rate", "seed", "factor"),
    [
        ("outer_race", "bpfo", 1.0, 3, None),
        ("outer_race", "bpfo", 1.0, 8, None),
        ("inner_race", "bpfi", 1.0, 5, None),
        ("ball", "bsf", 2.0, 6, 0.97),
    ],
)
def test_off_kinematic_line_lands_where_the_ground_truth_says(
    fault: str, defect: str, rate: float, seed: int, factor: float | None
) -> None:
    spec = MachineSpec(fault=FaultMode(fault), onset_h=100, failure_h=400, start_age_h=320,
                       slip=True, defect_factor=factor, seed=seed)
    machine = Machine(spec)
    truth = machine.ground_truth()
    lo, hi = SLIP_FACTOR_RANGE
    assert truth.defect_factor == machine.defect_factor
    assert lo <= truth.defect_factor <= hi if factor is None else truth.defect_factor == factor
    described = machine.describe()
    assert described["defect_factor"] == truth.defect_factor

    x = machine.render(int(8 * FS))[0]
    freqs, amps = envelope_spectrum(x, FS)
    kinematic = getattr(machine.kinematic_defects, defect) * rate
    expected = truth.defect_factor * kinematic
    assert described["defect_frequencies_hz"][defect] * rate == pytest.approx(expected)
    found = peak_hz(freqs, amps, 0.9 * kinematic, 1.05 * kinematic)
    assert abs(found / expected - 1.0) < 0.003, (found, expected, kinematic)
    if truth.defect_factor < 0.99:  # the line really moved: it is not at the kinematic one
        assert abs(found / kinematic - 1.0) > 0.006


def test_slip_is_off_by_default_and_seeded() -> None:
    plain = Machine(MachineSpec(fault=FaultMode.OUTER_RACE, seed=3))
    assert plain.defect_factor == 1.0 and plain.defects == plain.kinematic_defects
    a = Machine(MachineSpec(slip=True, seed=3)).defect_factor
    assert a == Machine(MachineSpec(slip=True, seed=3)).defect_factor
    assert a != Machine(MachineSpec(slip=True, seed=4)).defect_factor


# -- band-limited sensors at 12 / 20 / 25.6 / 51.2 kHz ----------------------------------------

def _bands(fs: float, *, band_limited: bool, seconds: float = 4.0) -> dict[str, FloatArray]:
    machine = Machine(MachineSpec(band_limited=band_limited, seed=4), sample_rate_hz=fs)
    return extract_features(machine.render(int(seconds * fs)), fs)


def test_a_12_khz_sensor_has_nothing_above_6_khz_and_the_same_bands_below() -> None:
    fs = 12_000.0
    machine = Machine(MachineSpec(band_limited=True, seed=4), sample_rate_hz=fs)
    x = machine.render(int(4 * fs))[0]
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / fs)
    # The anti-alias roll-off: what is left next to fs/2 is 60 dB below the signal.
    assert power[freqs > 0.45 * fs].sum() < 1e-6 * power.sum()
    low = _bands(fs, band_limited=True)
    wide = _bands(51_200.0, band_limited=True)
    for band in ("band_4k_8k_rms_ms2", "band_8k_12k_rms_ms2"):
        assert np.all(np.isnan(low[band])), band  # above fs/2: missing, not folded in
        assert np.all(np.isfinite(wide[band])), band
    for band in ("band_1k_2k_rms_ms2", "band_2k_4k_rms_ms2", "velocity_rms_mms"):
        np.testing.assert_allclose(low[band], wide[band], rtol=0.08, err_msg=band)
    # Without the sensor model, the structure's noise is squeezed below fs/2 and the bands
    # read high: the check above can fail.
    squeezed = _bands(fs, band_limited=False)
    assert np.all(squeezed["band_2k_4k_rms_ms2"] > 1.3 * wide["band_2k_4k_rms_ms2"])


@pytest.mark.parametrize("fs", [20_000.0, 25_600.0])
def test_common_sensor_rates_agree_below_their_nyquist(fs: float) -> None:
    got = _bands(fs, band_limited=True, seconds=2.0)
    wide = _bands(51_200.0, band_limited=True, seconds=2.0)
    assert np.all(np.isnan(got["band_8k_12k_rms_ms2"])) == (fs < 24_000.0)
    np.testing.assert_allclose(got["band_2k_4k_rms_ms2"], wide["band_2k_4k_rms_ms2"], rtol=0.08)


def test_a_resonance_above_the_passband_is_unseen_not_moved_into_it() -> None:
    fs = 12_000.0

    def hf_power(band_limited: bool, fault: FaultMode) -> float:
        spec = MachineSpec(fault=fault, onset_h=100, failure_h=400, start_age_h=390,
                           resonance_hz=5_200.0, band_limited=band_limited, seed=4)
        x = Machine(spec, sample_rate_hz=fs).render(int(2 * fs))[0]
        p = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
        f = np.fft.rfftfreq(x.size, 1.0 / fs)
        return float(p[(f > 4_300.0) & (f < 5_000.0)].sum())

    # The impacts ring 5.2 kHz: a 12 kHz sensor (passband to 4.8 kHz) does not see them ...
    assert hf_power(True, FaultMode.OUTER_RACE) < 1.5 * hf_power(True, FaultMode.NONE)
    # ... where the old clamp moved the ring to 4.8 kHz, into the band.
    assert hf_power(False, FaultMode.OUTER_RACE) > 5 * hf_power(False, FaultMode.NONE)


# -- several bearings on one shaft ------------------------------------------------------------

POINTS = tuple(PointSpec(f"brg{i + 1}", BEARINGS[b])
               for i, b in enumerate(("6309", "6205", "6206", "6312")))


def test_failing_bearing_vibration_reaches_the_others_attenuated_by_distance() -> None:
    faulty = MachineSpec(fault=FaultMode.OUTER_RACE, onset_h=100, failure_h=400,
                         start_age_h=390, points=POINTS, failing_point="brg2", seed=5)
    healthy = faulty.with_(fault=FaultMode.NONE)
    machine = Machine(faulty)
    assert machine.channels == 4 and machine.point_ids == ("brg1", "brg2", "brg3", "brg4")
    assert machine.ground_truth().failing_point == "brg2"
    # The fault's lines are the failing bearing's (a 6205), not the first point's.
    assert machine.defects == BEARINGS["6205"].defect_frequencies(faulty.shaft_hz)
    n = int(4 * FS)
    # Same seed, same noise and shaft tones: the difference is the fault's vibration alone.
    fault_only = machine.render(n) - Machine(healthy).render(n)
    spectrum = np.abs(np.fft.rfft(fault_only * np.hanning(n), axis=1))
    freqs = np.fft.rfftfreq(n, 1.0 / FS)
    k = int(np.argmin(np.abs(freqs - machine.defects.bpfo)))
    line = spectrum[:, k - 2 : k + 3].max(axis=1)
    np.testing.assert_allclose(line / line[1], [0.3, 1.0, 0.3, 0.1], rtol=0.1)
    # And the failing point is the loudest in the envelope band too.
    rms = np.sqrt(np.mean(fault_only**2, axis=1))
    assert int(np.argmax(rms)) == 1


def test_transmission_is_configurable_and_the_spec_names_real_points() -> None:
    spec = MachineSpec(points=POINTS, failing_point="brg4", transmission=(0.5, 0.2, 0.05))
    assert spec.transmission_gains() == (0.05, 0.2, 0.5, 1.0)
    with pytest.raises(SpecError, match="failing_point"):
        MachineSpec(points=POINTS, failing_point="brg9")
    with pytest.raises(SpecError, match="unique"):
        MachineSpec(points=(POINTS[0], POINTS[0]))
    physics = spec.physics()
    assert isinstance(physics, AssetPhysics)
    assert physics.point_ids == ("brg1", "brg2", "brg3", "brg4")
    bearing = physics.bearing_at("brg2")
    assert bearing is not None and bearing.n_balls == BEARINGS["6205"].n_balls


def test_shipped_four_bearing_spec_round_trips() -> None:
    spec = load_spec("shaft_four_bearings")
    assert len(spec.points) == 4 and spec.failing_point_id == "nde_motor"
    assert spec.slip and spec.band_limited and spec.sample_rate_hz == 20_000.0
    assert spec.load_steps
    assert MachineSpec.from_dict(spec.to_dict()) == spec
    machine = Machine(spec)
    assert machine.sample_rate_hz == 20_000.0 and machine.channels == 4


# -- load steps -------------------------------------------------------------------------------

def test_load_steps_appear_in_the_features_at_their_times() -> None:
    # One machine hour per second: the step at 2 h is at 2 s of waveform.
    spec = MachineSpec(speed_rpm=1480.0, load_pct=80.0, time_scale=3600.0, seed=2,
                       load_steps=(LoadStep(at_h=2.0, speed_rpm=1200.0, load_pct=40.0),))
    machine = Machine(spec)
    windows = machine.render(int(4 * FS))[0].reshape(8, int(FS / 2))
    shaft_hz = np.where(np.arange(8) < 4, 1480.0, 1200.0) / 60.0
    feats = extract_features(windows, FS, shaft_hz=shaft_hz)
    v = feats["velocity_rms_mms"]
    # Velocity of the shaft tones ∝ speed: it drops by 1200/1480 at the step, not before.
    assert np.ptp(v[:4]) < 0.03 * v[0] and np.ptp(v[4:]) < 0.03 * v[4]
    assert v[4:].mean() / v[:4].mean() == pytest.approx(1200.0 / 1480.0, rel=0.04)
    # The 1× line moves from 24.7 Hz to 20 Hz at the step.
    for i, target in ((1, 1480.0 / 60.0), (3, 1480.0 / 60.0), (4, 20.0), (7, 20.0)):
        w = windows[i] * np.hanning(windows.shape[1])
        f, a = np.fft.rfftfreq(windows.shape[1], 1 / FS), np.abs(np.fft.rfft(w))
        assert abs(peak_hz(f, a, 15.0, 30.0) - target) < 0.5, i
    # The ground truth and the scalar readings know the operating point.
    assert machine.ground_truth(1.9).speed_rpm == 1480.0
    assert machine.ground_truth(2.1).speed_rpm == 1200.0
    assert machine.ground_truth(2.1).load_pct == 40.0
    assert machine.scalars(3.0)["speed_rpm"] == pytest.approx(1200.0, rel=0.01)
    np.testing.assert_allclose(
        machine.expected_velocity_rms_mms(np.array([1.0, 3.0]))[:, 0], [v[:4].mean(),
                                                                       v[4:].mean()], rtol=0.05)


def test_realism_keeps_the_waveform_continuous_across_blocks() -> None:
    # A step at 0.5 s, a band-limited 20 kHz sensor, slip, and four points.
    spec = MachineSpec(fault=FaultMode.INNER_RACE, onset_h=0.0, failure_h=10.0,
                       time_scale=3600.0, seed=9, load_steps=(LoadStep(0.5, 1780.0, 100.0),),
                       band_limited=True, sample_rate_hz=FS, slip=True, points=POINTS)
    whole = Machine(spec).render(int(FS))
    machine = Machine(spec)
    parts = np.concatenate([machine.render(m) for m in (333, 12_800, 7, 12_460)], axis=1)
    # Equal to rounding: the FIR and anti-alias filters sum in a different order per block.
    np.testing.assert_allclose(whole, parts, rtol=0, atol=1e-12)
