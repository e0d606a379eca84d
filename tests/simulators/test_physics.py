"""Validation of the simulated physics against what the models are meant to find."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest

from models.diagnosis import iso_zone
from models.features import envelope_spectrum, extract_features
from simulators import BEARINGS, Machine, MachineSpec
from simulators.cli import spec_from_args
from simulators.degradation import Degradation
from simulators.fleet import make_fleet
from simulators.spec import FaultMode, Foundation, SpecError, load_spec

FS = 25_600.0
CLASSES: list[tuple[int, Foundation]] = [
    (1, "rigid"), (1, "flexible"), (2, "rigid"), (2, "flexible")
]


def worst_velocity(spec: MachineSpec, age_h: float, seconds: float = 1.0) -> float:
    """ISO velocity RMS of the worst channel, measured by models.features on a waveform."""
    x = Machine(spec.with_(start_age_h=age_h)).render(int(seconds * FS))
    return float(np.max(extract_features(x, FS)["velocity_rms_mms"]))


@pytest.mark.parametrize(
    ("fault", "defect", "rate_factor"),
    [("outer_race", "bpfo", 1.0), ("inner_race", "bpfi", 1.0), ("ball", "bsf", 2.0)],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_envelope_spectrum_peaks_at_the_defect_frequency(
    fault: str, defect: str, rate_factor: float, seed: int
) -> None:
    bearing = BEARINGS[("6205", "6309", "22220")[seed]]
    spec = MachineSpec(fault=FaultMode(fault), bearing=bearing,
                       speed_rpm=(1480.0, 2970.0, 990.0)[seed],
                       onset_h=100, failure_h=400, seed=seed, start_age_h=250)
    machine = Machine(spec)
    x = machine.render(int(4 * FS))[0]
    freqs, amps = envelope_spectrum(x, FS)
    sel = freqs > 1.5 * spec.shaft_hz  # above the shaft line that AM puts in the envelope
    peak_hz = float(freqs[sel][np.argmax(amps[sel])])
    target = getattr(machine.defects, defect) * rate_factor
    assert abs(peak_hz / target - 1.0) < 0.01, (peak_hz, target)


@pytest.mark.parametrize(("group", "foundation"), CLASSES)
@pytest.mark.parametrize("seed", [3, 4])
def test_healthy_machine_is_in_zone_a_or_b(group: int, foundation: Foundation, seed: int) -> None:
    spec = MachineSpec(iso_group=group, foundation=foundation, seed=seed,
                       fault=FaultMode.OUTER_RACE,
                       onset_h=500, failure_h=900)
    x = Machine(spec).render(int(FS))
    feats = extract_features(x, FS)
    v = float(np.max(feats["velocity_rms_mms"]))
    assert str(iso_zone(v, group, foundation)) in ("A", "B")
    # A realistic accelerometer baseline, not a silent signal.
    assert 0.5 <= float(feats["accel_rms_ms2"][0]) <= 3.0


def test_fleet_healthy_machines_sit_in_zone_a_or_b() -> None:
    for spec in make_fleet(12, seed=5, healthy_fraction=1.0):
        v = worst_velocity(spec, spec.start_age_h, seconds=0.5)
        assert str(iso_zone(v, spec.iso_group, spec.foundation)) in ("A", "B"), spec


@pytest.mark.parametrize("fault", [f.value for f in FaultMode if f is not FaultMode.NONE])
def test_degrading_machine_crosses_into_c_and_d_near_failure(fault: str) -> None:
    onset, failure = 100.0, 400.0
    spec = MachineSpec(fault=FaultMode(fault), onset_h=onset, failure_h=failure, seed=11,
                       iso_group=1, foundation="rigid")
    ages = np.linspace(onset, failure, 16)
    zones = [str(iso_zone(worst_velocity(spec, a, 0.5), 1, "rigid")) for a in ages]
    first_c = next(a for a, z in zip(ages, zones, strict=True) if z in "CD")
    # Unsatisfactory (C) only in the last quarter of the fault's life, and D at failure.
    assert first_c >= onset + 0.75 * (failure - onset), list(zip(ages, zones, strict=True))
    assert zones[-1] == "D"
    assert all(z in "AB" for z in zones[: len(zones) // 2])


def test_velocity_measured_matches_the_calibration() -> None:
    spec = MachineSpec(fault=FaultMode.INNER_RACE, onset_h=0, failure_h=100, seed=8)
    for age in (0.0, 60.0, 90.0, 100.0):
        m = Machine(spec.with_(start_age_h=age))
        measured = extract_features(m.render(int(2 * FS)), FS)["velocity_rms_mms"]
        np.testing.assert_allclose(measured, m.expected_velocity_rms_mms(age), rtol=0.08)


def test_same_seed_same_waveform_other_seed_differs() -> None:
    spec = MachineSpec(fault=FaultMode.BALL, onset_h=0, failure_h=10, seed=42, start_age_h=5)
    a = Machine(spec).render(8192)
    b = Machine(spec).render(8192)
    c = Machine(spec.with_(seed=43)).render(8192)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert make_fleet(20, seed=9) == make_fleet(20, seed=9)


@pytest.mark.parametrize("fault", ["inner_race", "looseness", "none"])
def test_blocks_back_to_back_equal_one_long_block(fault: str) -> None:
    # Damage grows during the render (time_scale), so the envelope must be continuous too.
    spec = MachineSpec(fault=FaultMode(fault), onset_h=0.0, failure_h=0.02, time_scale=3.0, seed=5)
    one = Machine(spec).render(1024 * 40)
    blocks = Machine(spec)
    chunks = [blocks.render(1024) for _ in range(40)]
    np.testing.assert_array_equal(one, np.concatenate(chunks, axis=1))
    odd = Machine(spec)
    sizes = [1, 7, 1000, 333, 4096, 1 << 12]
    parts: list[npt.NDArray[np.float64]] = []
    done = 0
    while done < one.shape[1]:
        n = min(sizes[len(parts) % len(sizes)], one.shape[1] - done)
        parts.append(odd.render(n))
        done += n
    np.testing.assert_array_equal(one, np.concatenate(parts, axis=1))


def test_degradation_ground_truth() -> None:
    d = Degradation(FaultMode.OUTER_RACE, onset_h=100.0, failure_h=400.0)
    ages = np.array([0.0, 99.9, 100.0, 250.0, 400.0, 500.0])
    hi = d.health_index(ages)
    assert hi[0] == 1.0 and hi[1] == 1.0
    assert hi[2] == pytest.approx(0.98)
    assert hi[4] == pytest.approx(0.0) and hi[5] == 0.0
    assert np.all(np.diff(hi) <= 0)
    np.testing.assert_allclose(d.rul_h(ages), [400, 300.1, 300, 150, 0, 0])
    healthy = Degradation(FaultMode.NONE, 100.0, 400.0)
    assert np.all(healthy.health_index(ages) == 1.0)
    assert np.all(np.isinf(healthy.rul_h(ages)))


def test_time_scale_ages_the_machine_with_waveform_time() -> None:
    m = Machine(MachineSpec(fault=FaultMode.OUTER_RACE, onset_h=1, failure_h=2, time_scale=3600.0))
    m.render(int(FS * 1.5))
    assert m.age_h == pytest.approx(1.5)
    gt = m.ground_truth()
    assert gt.rul_h == pytest.approx(0.5) and 0.0 < gt.health_index < 1.0
    assert m.wall_seconds_to_age(2.0) == pytest.approx(2.0)


def test_temperature_lags_load_and_rises_with_damage() -> None:
    spec = MachineSpec(fault=FaultMode.INNER_RACE, onset_h=1, failure_h=10, ambient_c=20,
                       load_pct=50)
    m = Machine(spec)
    cold = m.scalars(0.0)["temperature_c"]
    assert cold == pytest.approx(20 + 15, abs=0.3)
    hot = [m.scalars(a)["temperature_c"] for a in (9.0, 10.0, 14.0)]
    assert hot[0] < hot[1] < hot[2]  # still catching up: first-order lag of 0.5 h
    assert hot[2] == pytest.approx(35 + 22, abs=0.5)


def test_spec_round_trips_through_toml_and_json(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    spec = MachineSpec(machine_id="pump-7", fault=FaultMode.MISALIGNMENT, bearing=BEARINGS["6309"],
                       iso_group=1, foundation="flexible", seed=3, time_scale=60.0)
    data = spec.to_dict()
    (folder / "m.json").write_text(json.dumps(data))
    assert load_spec(folder / "m.json") == spec
    toml = """
[machine]
id = "pump-7"
speed_rpm = 2970
iso_group = 1
foundation = "flexible"
[bearing]
name = "6309"
[fault]
mode = "misalignment"
onset_h = 10
failure_h = 50
[simulation]
seed = 3
"""
    (folder / "m.toml").write_text(toml)
    loaded = load_spec(folder / "m.toml")
    assert loaded.bearing == BEARINGS["6309"] and loaded.fault is FaultMode.MISALIGNMENT
    assert loaded.shaft_hz == pytest.approx(49.5)
    (folder / "bad.toml").write_text('[fault]\nmode = "rust"\n')
    with pytest.raises(SpecError, match="rust"):
        load_spec(folder / "bad.toml")


def test_cli_flags_override_the_spec_file(tmp_path: object) -> None:
    import argparse
    from pathlib import Path

    path = Path(str(tmp_path)) / "m.json"
    path.write_text(json.dumps(MachineSpec(machine_id="fan-1", seed=1).to_dict()))
    args = argparse.Namespace(spec=str(path), machine_id=None, fault="ball", onset_h=5.0,
                              failure_h=None, start_age_h=None, time_scale=100.0, seed=None,
                              speed_rpm=None, load_pct=None, bearing="6206", iso_group=None,
                              foundation=None)
    spec = spec_from_args(args)
    assert (spec.machine_id, spec.fault, spec.onset_h, spec.failure_h) == ("fan-1", "ball", 5, 400)
    assert spec.time_scale == 100.0 and spec.bearing == BEARINGS["6206"]
