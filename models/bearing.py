"""Rolling-element bearing geometry and its characteristic defect frequencies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["SKF_6205", "BearingGeometry", "BearingLike", "DefectFrequencies", "defect_orders"]


class DefectFrequencies(NamedTuple):
    """Bearing defect frequencies, either as shaft orders or in Hz (see the producer)."""

    bpfo: float
    bpfi: float
    bsf: float
    ftf: float


class BearingLike(Protocol):
    """Anything with a bearing's four numbers: a `BearingGeometry`, or an asset's bearing.

    Callers outside `models/` pass the geometry of the asset's validated bearing type
    (`BearingSpec.geometry()` in the contract package) without converting it.
    """

    @property
    def n_balls(self) -> int: ...
    @property
    def ball_diameter_mm(self) -> float: ...
    @property
    def pitch_diameter_mm(self) -> float: ...
    @property
    def contact_angle_deg(self) -> float: ...


def defect_orders(bearing: BearingLike) -> DefectFrequencies:
    """Defect frequencies as multiples of shaft speed (orders), outer race stationary.

    BSF is the *ball spin* frequency ``Pd/(2·Bd)·(1 − (Bd/Pd·cos φ)²)``, one impact per
    ball revolution; a ball defect striking both races shows up at 2×BSF.
    """
    ratio = bearing.ball_diameter_mm / bearing.pitch_diameter_mm
    ratio_cos = ratio * math.cos(math.radians(bearing.contact_angle_deg))
    half_n = bearing.n_balls / 2.0
    return DefectFrequencies(
        bpfo=half_n * (1.0 - ratio_cos),
        bpfi=half_n * (1.0 + ratio_cos),
        bsf=bearing.pitch_diameter_mm / (2.0 * bearing.ball_diameter_mm) * (1.0 - ratio_cos**2),
        ftf=0.5 * (1.0 - ratio_cos),
    )


@dataclass(frozen=True)
class BearingGeometry:
    """Geometry of a rolling-element bearing with a stationary outer race.

    The defect formulas are the standard kinematic ones (no slip). BSF is the *ball spin*
    frequency ``Pd/(2·Bd)·(1 − (Bd/Pd·cos φ)²)``, i.e. one impact per ball revolution; a ball
    defect striking both races shows up at 2×BSF, which diagnosis checks as a harmonic.
    """

    n_balls: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.n_balls, bool) or not isinstance(self.n_balls, int):
            raise ValueError(f"n_balls must be an int, got {self.n_balls!r}")
        if self.n_balls < 3:
            raise ValueError(f"n_balls must be at least 3, got {self.n_balls}")
        for name in ("ball_diameter_mm", "pitch_diameter_mm", "contact_angle_deg"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if self.ball_diameter_mm <= 0:
            raise ValueError(f"ball_diameter_mm must be > 0, got {self.ball_diameter_mm}")
        if self.pitch_diameter_mm <= self.ball_diameter_mm:
            raise ValueError(
                "pitch_diameter_mm must exceed ball_diameter_mm "
                f"({self.pitch_diameter_mm} <= {self.ball_diameter_mm})"
            )
        if not 0.0 <= self.contact_angle_deg < 90.0:
            raise ValueError(f"contact_angle_deg must be in [0, 90), got {self.contact_angle_deg}")

    def defect_orders(self) -> DefectFrequencies:
        """Defect frequencies as multiples of shaft speed (orders), outer race stationary."""
        return defect_orders(self)

    def defect_frequencies(self, shaft_hz: float) -> DefectFrequencies:
        """Defect frequencies in Hz for a shaft turning at ``shaft_hz``."""
        if not math.isfinite(shaft_hz) or shaft_hz <= 0:
            raise ValueError(f"shaft_hz must be finite and > 0, got {shaft_hz!r}")
        orders = self.defect_orders()
        return DefectFrequencies(*(order * shaft_hz for order in orders))


#: Deep-groove ball bearing used on the CWRU test rig drive end (0.3126 in balls, 1.537 in pitch).
SKF_6205 = BearingGeometry(
    n_balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04, contact_angle_deg=0.0
)
