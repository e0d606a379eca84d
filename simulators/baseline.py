"""A healthy machine's baseline vibration and temperature from what it is: its kind, rated
power and speed, with a seeded machine-to-machine spread.

Real fleets do not share one number. ISO 10816-3 sorts machines into group 1 (large, rated
power above 300 kW) and group 2 (medium, 15–300 kW; below 15 kW this simulator uses the
group 2 limits too, as ISO 10816-3 does not cover them), each on a rigid or a flexible
foundation, and gives zone boundaries for each. Where a healthy machine sits inside its
zones depends on what it is: a well-aligned motor runs quietly, a fan or a gearbox less so;
a slow machine runs quieter than a fast one of the same build (ISO balance grades hold
e·ω, the unbalance velocity, roughly constant, so the dependence on speed is weak). Two
machines of one type still differ, by roughly a factor of 1.3 to 1.5 (mounting, balance,
alignment): a log-normal spread, drawn from the machine's seed.

Temperature: the bearing runs above ambient by an amount that grows with load, with speed
(friction) and with the kind of machine (a gearbox churns oil, a fan is cooled by its own
air), again with a seeded spread.

A healthy machine always stays in zone A or B: its velocity is clipped to 25 % of the A/B
boundary at least and 85 % of the B/C boundary at most; its temperature rise at full load
stays within 8–70 °C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from simulators.spec import ISO_ZONE_LIMITS_MMS, Foundation, MachineSpec

__all__ = [
    "LARGE_MACHINE_KW",
    "MACHINE_KINDS",
    "HealthyBaseline",
    "MachineKind",
    "healthy_baseline",
    "iso_group_for_power",
    "with_baseline",
]

MachineKind = Literal["motor", "pump", "fan", "spindle", "gearbox"]
MACHINE_KINDS: tuple[MachineKind, ...] = get_args(MachineKind)
#: ISO 10816-3: group 1 is rated above 300 kW.
LARGE_MACHINE_KW = 300.0

#: Median healthy velocity as a fraction of the zone A/B boundary, at 1500 rpm.
_VELOCITY_OF_AB: dict[MachineKind, float] = {
    "spindle": 0.6,
    "motor": 0.7,
    "pump": 0.85,
    "gearbox": 0.95,
    "fan": 1.0,
}
#: Median bearing temperature rise over ambient at full load and 1500 rpm, °C.
_HEATING_C: dict[MachineKind, float] = {
    "fan": 22.0,
    "pump": 28.0,
    "spindle": 30.0,
    "motor": 35.0,
    "gearbox": 40.0,
}
_VELOCITY_SPEED_EXPONENT = 0.3
_HEATING_SPEED_EXPONENT = 0.3
#: Log-normal spread (σ of the log) between machines of one kind.
VELOCITY_SPREAD = 0.3
HEATING_SPREAD = 0.12
#: A healthy bearing's rise at full load stays in this range (°C): never cold, never hot.
HEATING_RANGE_C = (8.0, 70.0)
_MIN_OF_AB = 0.25
_MAX_OF_BC = 0.85
_REFERENCE_RPM = 1500.0


@dataclass(frozen=True)
class HealthyBaseline:
    """What a healthy machine shows: its ISO group, velocity and temperature rise."""

    iso_group: int
    foundation: Foundation
    velocity_rms_mms: float
    #: The velocity as a fraction of the zone B/C boundary (`MachineSpec.healthy_severity`).
    healthy_severity: float
    #: Bearing temperature rise over ambient at full load, °C (`MachineSpec.load_heating_c`).
    load_heating_c: float

    def temperature_c(self, ambient_c: float, load_pct: float) -> float:
        return ambient_c + self.load_heating_c * load_pct / 100.0


def iso_group_for_power(rated_power_kw: float) -> int:
    """ISO 10816-3 machine group: 1 above 300 kW, else 2."""
    if not (math.isfinite(rated_power_kw) and rated_power_kw > 0):
        raise ValueError(f"rated power must be a positive number of kW, got {rated_power_kw!r}")
    return 1 if rated_power_kw > LARGE_MACHINE_KW else 2


def _speed_factor(speed_rpm: float, exponent: float) -> float:
    return float(np.clip((speed_rpm / _REFERENCE_RPM) ** exponent, 0.5, 1.6))


def healthy_baseline(
    kind: MachineKind,
    rated_power_kw: float,
    speed_rpm: float,
    foundation: Foundation = "rigid",
    *,
    seed: int = 0,
) -> HealthyBaseline:
    """The baseline of one machine; the same arguments always give the same machine."""
    if kind not in _VELOCITY_OF_AB:
        raise ValueError(f"unknown machine kind {kind!r}; known: {', '.join(MACHINE_KINDS)}")
    if not (math.isfinite(speed_rpm) and speed_rpm > 0):
        raise ValueError(f"speed must be a positive number of rpm, got {speed_rpm!r}")
    group = iso_group_for_power(rated_power_kw)
    ab, bc, _cd = ISO_ZONE_LIMITS_MMS[(group, foundation)]
    rng = np.random.default_rng([seed, 0xBA5E])
    spread_v, spread_t = rng.normal(0.0, 1.0, 2)
    median = _VELOCITY_OF_AB[kind] * ab * _speed_factor(speed_rpm, _VELOCITY_SPEED_EXPONENT)
    velocity = float(np.clip(median * math.exp(VELOCITY_SPREAD * spread_v),
                             _MIN_OF_AB * ab, _MAX_OF_BC * bc))
    heating = float(np.clip(
        _HEATING_C[kind]
        * _speed_factor(speed_rpm, _HEATING_SPEED_EXPONENT)
        * math.exp(HEATING_SPREAD * spread_t),
        *HEATING_RANGE_C,
    ))
    return HealthyBaseline(
        iso_group=group,
        foundation=foundation,
        velocity_rms_mms=velocity,
        healthy_severity=velocity / bc,
        load_heating_c=heating,
    )


def with_baseline(spec: MachineSpec, kind: MachineKind) -> MachineSpec:
    """`spec` with the ISO group, healthy velocity and temperature rise of a `kind` machine
    of its rated power and speed (seeded by the spec's seed)."""
    base = healthy_baseline(kind, spec.rated_power_kw, spec.speed_rpm, spec.foundation,
                            seed=spec.seed)
    return spec.with_(
        iso_group=base.iso_group,
        healthy_severity=base.healthy_severity,
        load_heating_c=base.load_heating_c,
    )
