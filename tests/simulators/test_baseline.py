"""Healthy baselines from what a machine is: ISO group from power, zone A or B whatever the
kind, power and speed, seeded spread between machines, kinds in a believable order."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ironwatch_app.demo import default_machines
from simulators.baseline import (
    MACHINE_KINDS,
    MachineKind,
    healthy_baseline,
    iso_group_for_power,
    with_baseline,
)
from simulators.cli import MACHINE_KINDS as CLI_KINDS
from simulators.fleet import make_fleet
from simulators.machine import Machine
from simulators.spec import ISO_ZONE_LIMITS_MMS, Foundation, MachineSpec, iso_zone

kinds = st.sampled_from(MACHINE_KINDS)
powers = st.floats(min_value=0.5, max_value=20_000.0, allow_nan=False)
speeds = st.floats(min_value=60.0, max_value=12_000.0, allow_nan=False)
foundations = st.sampled_from(("rigid", "flexible"))
seeds = st.integers(min_value=0, max_value=2**62)


@settings(max_examples=300, deadline=None)
@given(kind=kinds, power=powers, speed=speeds, foundation=foundations, seed=seeds)
def test_a_healthy_machine_is_in_zone_a_or_b(
    kind: MachineKind, power: float, speed: float, foundation: Foundation, seed: int
) -> None:
    b = healthy_baseline(kind, power, speed, foundation, seed=seed)
    assert b.iso_group == (1 if power > 300 else 2)
    ab, bc, _cd = ISO_ZONE_LIMITS_MMS[(b.iso_group, foundation)]
    assert iso_zone(b.velocity_rms_mms, b.iso_group, foundation) in ("A", "B")
    assert 0.25 * ab <= b.velocity_rms_mms <= 0.85 * bc
    assert b.healthy_severity == pytest.approx(b.velocity_rms_mms / bc)
    assert 0.05 <= b.healthy_severity < 1.0
    assert 8.0 <= b.load_heating_c <= 70.0
    # The same machine every time: the spread comes from the seed alone.
    assert healthy_baseline(kind, power, speed, foundation, seed=seed) == b
    # And it is a machine the simulator accepts.
    spec = with_baseline(MachineSpec(rated_power_kw=power, speed_rpm=speed,
                                     foundation=foundation, seed=seed), kind)
    assert (spec.iso_group, spec.healthy_severity) == (b.iso_group, b.healthy_severity)


@pytest.mark.parametrize("kind", MACHINE_KINDS)
def test_machines_of_one_kind_differ(kind: MachineKind) -> None:
    many = [healthy_baseline(kind, 55.0, 1480.0, seed=s) for s in range(200)]
    velocity = np.array([b.velocity_rms_mms for b in many])
    heating = np.array([b.load_heating_c for b in many])
    # A log-normal spread: roughly ±30 % in velocity, ±12 % in temperature rise.
    assert 0.2 <= float(np.std(np.log(velocity))) <= 0.4
    assert 0.08 <= float(np.std(np.log(heating))) <= 0.16
    assert len(set(np.round(velocity, 3))) > 150


def median_velocity(kind: MachineKind, speed: float = 1480.0) -> float:
    return statistics.median(
        healthy_baseline(kind, 55.0, speed, seed=s).velocity_rms_mms for s in range(201)
    )


def test_kinds_and_speeds_in_a_believable_order() -> None:
    assert median_velocity("spindle") < median_velocity("motor") < median_velocity("pump")
    assert median_velocity("pump") < median_velocity("fan")
    assert median_velocity("pump", 740.0) < median_velocity("pump", 2970.0)
    gearbox = statistics.median(healthy_baseline("gearbox", 55, 1480, seed=s).load_heating_c
                                for s in range(201))
    fan = statistics.median(healthy_baseline("fan", 55, 1480, seed=s).load_heating_c
                            for s in range(201))
    assert gearbox > fan


def test_the_group_follows_the_rated_power() -> None:
    assert iso_group_for_power(15.0) == 2 and iso_group_for_power(300.0) == 2
    assert iso_group_for_power(300.1) == 1
    with pytest.raises(ValueError, match="rated power"):
        iso_group_for_power(0.0)
    with pytest.raises(ValueError, match="unknown machine kind"):
        healthy_baseline("boiler", 55.0, 1480.0)  # type: ignore[arg-type]
    assert CLI_KINDS == MACHINE_KINDS


def test_the_demo_machines_no_longer_share_one_baseline() -> None:
    seen = []
    for m in default_machines():
        spec = with_baseline(
            MachineSpec(machine_id=m.machine_id, speed_rpm=m.speed_rpm, seed=m.seed,
                        rated_power_kw=m.rated_power_kw, foundation=m.foundation),
            m.kind,  # type: ignore[arg-type]
        )
        machine = Machine(spec, sample_rate_hz=8192.0, channels=1)
        velocity = float(np.max(machine.expected_velocity_rms_mms(0.0)))
        temperature = spec.ambient_c + spec.load_heating_c * spec.load_pct / 100.0
        assert iso_zone(velocity, spec.iso_group, spec.foundation) in ("A", "B")
        seen.append((round(velocity, 2), round(temperature, 1)))
    assert len({v for v, _ in seen}) == len(seen) and len({t for _, t in seen}) == len(seen)
    assert (1.54, 47.5) not in seen


def test_a_fleet_spreads_its_baselines() -> None:
    fleet = make_fleet(40, seed=3, healthy_fraction=1.0)
    assert {s.iso_group for s in fleet} == {1, 2}
    assert all(s.iso_group == iso_group_for_power(s.rated_power_kw) for s in fleet)
    assert len({round(s.healthy_severity, 4) for s in fleet}) == len(fleet)
    assert len({round(s.load_heating_c, 3) for s in fleet}) == len(fleet)
