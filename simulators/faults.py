"""Fault signatures: which vibration components each fault mode adds, and how they grow.

A signature is physics-shaped but unit-free: velocity *shares* of spectral lines (shaft orders
or bearing defect frequencies), a low-frequency noise-floor share, channel gains
(radial H, radial V, axial) and, for bearing faults, an impact train. `machine.py` scales it
so that the machine reaches ISO zone D at its failure time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.bearing import DefectFrequencies
from simulators.spec import FaultMode

__all__ = ["ImpactSpec", "Line", "Signature", "base_frequency_hz", "signature"]


@dataclass(frozen=True)
class Line:
    """A spectral line: ``order`` × the base frequency (shaft, or a bearing defect frequency)."""

    base: str  # "shaft", "bpfo", "bpfi", "bsf", "ftf"
    order: float
    weight: float  # share of the fault's line velocity (relative RMS)
    offset_orders: float = 0.0  # sideband offset in shaft orders (inner race: BPFI ± 1×)


@dataclass(frozen=True)
class ImpactSpec:
    """Bearing impacts: rate, modulation and amplitude pattern."""

    base: str  # defect frequency the impacts repeat at
    rate_factor: float = 1.0  # ball faults: 2 × BSF (the ball strikes both races per spin)
    modulation: str | None = None  # "shaft" (inner race) or "ftf" (ball in the cage)
    modulation_depth: float = 0.0
    pattern: tuple[float, ...] = (1.0,)


@dataclass(frozen=True)
class Signature:
    """What a fault adds to the machine's vibration as its damage grows."""

    lines: tuple[Line, ...] = ()
    channel_gains: tuple[float, float, float] = (1.0, 0.8, 0.4)
    floor_weight: float = 0.0  # share of broadband low-frequency velocity (late-stage roughness)
    growth_power: float = 1.0  # line and floor amplitude ∝ damage ** growth_power
    impacts: ImpactSpec | None = None
    impact_strength: float = 0.0  # impact amplitude at damage 1, in units of the HF noise RMS
    friction_heating_c: float = 5.0  # bearing temperature rise at damage 1
    phases_quadrature: bool = field(default=True)  # V lags H by 90° for rotating forces


_SIGNATURES: dict[FaultMode, Signature] = {
    FaultMode.NONE: Signature(),
    FaultMode.OUTER_RACE: Signature(
        lines=(
            Line("bpfo", 1, 1.0), Line("bpfo", 2, 0.6), Line("bpfo", 3, 0.35),
            Line("shaft", 1, 0.5),
        ),
        floor_weight=0.6,
        growth_power=1.5,
        impacts=ImpactSpec("bpfo"),
        impact_strength=12.0,
        friction_heating_c=20.0,
    ),
    FaultMode.INNER_RACE: Signature(
        lines=(
            Line("bpfi", 1, 1.0), Line("bpfi", 1, 0.45, -1.0), Line("bpfi", 1, 0.45, 1.0),
            Line("bpfi", 2, 0.4), Line("shaft", 1, 0.5),
        ),
        floor_weight=0.6,
        growth_power=1.5,
        impacts=ImpactSpec("bpfi", modulation="shaft", modulation_depth=0.6),
        impact_strength=14.0,
        friction_heating_c=22.0,
    ),
    FaultMode.BALL: Signature(
        lines=(
            Line("bsf", 2, 1.0), Line("bsf", 1, 0.4), Line("bsf", 4, 0.3), Line("shaft", 1, 0.4),
        ),
        floor_weight=0.6,
        growth_power=1.5,
        # One impact on each race per ball spin: the inner-race hit is the stronger one.
        impacts=ImpactSpec(
            "bsf", rate_factor=2.0, modulation="ftf", modulation_depth=0.5, pattern=(1.0, 0.55)
        ),
        impact_strength=10.0,
        friction_heating_c=15.0,
    ),
    FaultMode.IMBALANCE: Signature(
        lines=(Line("shaft", 1, 1.0),),
        channel_gains=(1.0, 0.85, 0.2),
        growth_power=1.25,
        friction_heating_c=3.0,
    ),
    FaultMode.MISALIGNMENT: Signature(
        lines=(Line("shaft", 2, 1.0), Line("shaft", 1, 0.6), Line("shaft", 3, 0.35)),
        channel_gains=(0.7, 0.6, 1.0),  # misalignment shows strongest axially
        growth_power=1.25,
        friction_heating_c=8.0,
        phases_quadrature=False,
    ),
    FaultMode.LOOSENESS: Signature(
        lines=(
            Line("shaft", 0.5, 0.3), Line("shaft", 1, 0.6), Line("shaft", 1.5, 0.25),
            Line("shaft", 2, 0.5), Line("shaft", 2.5, 0.2), Line("shaft", 3, 0.4),
            Line("shaft", 4, 0.3), Line("shaft", 5, 0.25), Line("shaft", 6, 0.2),
            Line("shaft", 7, 0.15), Line("shaft", 8, 0.12), Line("shaft", 9, 0.1),
            Line("shaft", 10, 0.08),
        ),
        channel_gains=(0.7, 1.0, 0.4),  # structural looseness: vertical direction dominates
        floor_weight=0.3,
        growth_power=1.25,
        friction_heating_c=4.0,
        phases_quadrature=False,
    ),
}


def signature(fault: FaultMode) -> Signature:
    """The signature of a fault mode."""
    return _SIGNATURES[fault]


def base_frequency_hz(base: str, shaft_hz: float, defects: DefectFrequencies) -> float:
    """Frequency of a named base ("shaft" or a defect-frequency field) in Hz."""
    if base == "shaft":
        return shaft_hz
    return float(getattr(defects, base))
