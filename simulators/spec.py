"""Machine specs: the asset physics a simulated machine is built from, loadable from TOML/JSON.

One spec file can be given to the simulator, the gateway and the cloud, so all three agree on
shaft speed, bearing geometry and ISO 10816-3 class.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from models.bearing import BearingGeometry

__all__ = [
    "BEARINGS",
    "CHANNEL_POINTS",
    "ISO_ZONE_LIMITS_MMS",
    "FaultMode",
    "MachineSpec",
    "SpecError",
    "iso_zone",
    "load_spec",
]

Foundation = Literal["rigid", "flexible"]

#: Measurement points of the up-to-three accelerometer channels, in channel order.
CHANNEL_POINTS: tuple[str, ...] = ("de_radial_h", "de_radial_v", "de_axial")

#: ISO 10816-3 zone boundaries A/B, B/C, C/D in mm/s RMS (10–1000 Hz) by (group, foundation).
ISO_ZONE_LIMITS_MMS: dict[tuple[int, str], tuple[float, float, float]] = {
    (1, "rigid"): (2.3, 4.5, 7.1),
    (1, "flexible"): (3.5, 7.1, 11.0),
    (2, "rigid"): (1.4, 2.8, 4.5),
    (2, "flexible"): (2.3, 4.5, 7.1),
}

#: A few common bearings (approximate catalogue geometry) so specs can name one.
BEARINGS: dict[str, BearingGeometry] = {
    "6205": BearingGeometry(9, 7.94, 39.04),
    "6206": BearingGeometry(9, 9.53, 46.0),
    "6309": BearingGeometry(8, 17.46, 72.5),
    "6312": BearingGeometry(8, 22.23, 95.0),
    "NU216": BearingGeometry(15, 18.0, 112.5),
    "7310B": BearingGeometry(13, 17.46, 80.0, 40.0),
    "22220": BearingGeometry(19, 24.0, 145.0, 10.0),
}


class SpecError(ValueError):
    """A machine spec that cannot describe a machine; the message says which field and why."""


class FaultMode(StrEnum):
    """The fault a simulated machine develops (``none``: it stays healthy)."""

    NONE = "none"
    OUTER_RACE = "outer_race"
    INNER_RACE = "inner_race"
    BALL = "ball"
    IMBALANCE = "imbalance"
    MISALIGNMENT = "misalignment"
    LOOSENESS = "looseness"

    @property
    def is_bearing(self) -> bool:
        return self in (FaultMode.OUTER_RACE, FaultMode.INNER_RACE, FaultMode.BALL)


def iso_zone(velocity_rms_mms: float, group: int, foundation: str) -> str:
    """ISO 10816-3 evaluation zone ("A".."D") of a velocity RMS for a machine class."""
    ab, bc, cd = ISO_ZONE_LIMITS_MMS[(group, foundation)]
    if velocity_rms_mms < ab:
        return "A"
    if velocity_rms_mms < bc:
        return "B"
    return "C" if velocity_rms_mms < cd else "D"


@dataclass(frozen=True)
class MachineSpec:
    """A simulated machine: asset physics, the fault it develops, and simulation settings.

    Ages are machine operating hours; ``time_scale`` is machine seconds per wall (or waveform)
    second, so ``time_scale=3600`` ages the machine one hour per second.
    """

    machine_id: str = "machine-1"
    speed_rpm: float = 1480.0
    load_pct: float = 75.0
    bearing: BearingGeometry = field(default_factory=lambda: BEARINGS["6205"])
    iso_group: int = 2
    foundation: Foundation = "rigid"
    rated_power_kw: float = 15.0
    ambient_c: float = 25.0
    fault: FaultMode = FaultMode.NONE
    onset_h: float = 100.0
    failure_h: float = 400.0
    start_age_h: float = 0.0
    time_scale: float = 1.0
    seed: int = 0
    #: Healthy velocity RMS as a fraction of the zone B/C boundary (< 1 keeps it in A/B).
    healthy_severity: float = 0.55
    #: Structural resonance excited by bearing impacts, per machine (None: drawn from seed).
    resonance_hz: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.fault, str) and not isinstance(self.fault, FaultMode):
            try:
                object.__setattr__(self, "fault", FaultMode(self.fault))
            except ValueError as err:
                modes = ", ".join(m.value for m in FaultMode)
                raise SpecError(f"fault {self.fault!r} is not one of {modes}") from err
        checks = {
            "speed_rpm": 60.0 <= self.speed_rpm <= 12_000.0,
            "load_pct": 0.0 <= self.load_pct <= 120.0,
            "rated_power_kw": self.rated_power_kw > 0,
            "ambient_c": -40.0 <= self.ambient_c <= 60.0,
            "onset_h": self.onset_h >= 0,
            "failure_h": self.failure_h > self.onset_h,
            "start_age_h": self.start_age_h >= 0,
            "time_scale": self.time_scale > 0 and math.isfinite(self.time_scale),
            "healthy_severity": 0.05 <= self.healthy_severity < 1.0,
            "resonance_hz": self.resonance_hz is None or self.resonance_hz > 100.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise SpecError(f"{name}={getattr(self, name)!r} is out of range")
        if (self.iso_group, self.foundation) not in ISO_ZONE_LIMITS_MMS:
            raise SpecError(
                f"iso_group={self.iso_group!r}, foundation={self.foundation!r}: "
                "group must be 1 or 2 and foundation 'rigid' or 'flexible'"
            )
        if not 0 <= self.seed < 2**63:
            raise SpecError(f"seed={self.seed!r} must be a non-negative int")

    @property
    def shaft_hz(self) -> float:
        return self.speed_rpm / 60.0

    def with_(self, **changes: Any) -> MachineSpec:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly nested dict, the same shape `from_dict` reads."""
        flat = asdict(self)
        bearing = flat.pop("bearing")
        fault = {"mode": str(self.fault), "onset_h": self.onset_h, "failure_h": self.failure_h}
        for key in ("fault", "onset_h", "failure_h"):
            flat.pop(key)
        sim = {k: flat.pop(k) for k in ("start_age_h", "time_scale", "seed")}
        if flat["resonance_hz"] is None:
            flat.pop("resonance_hz")
        flat["id"] = flat.pop("machine_id")
        return {"machine": flat, "bearing": bearing, "fault": fault, "simulation": sim}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MachineSpec:
        """Build from the nested shape (sections machine, bearing, fault, simulation)."""
        unknown = set(data) - {"machine", "bearing", "fault", "simulation"}
        if unknown:
            raise SpecError(f"unknown spec sections: {sorted(unknown)}")
        kwargs: dict[str, Any] = dict(data.get("machine", {}))
        if "id" in kwargs:
            kwargs["machine_id"] = kwargs.pop("id")
        bearing = data.get("bearing")
        if isinstance(bearing, str) or (isinstance(bearing, dict) and "name" in bearing):
            name = bearing if isinstance(bearing, str) else bearing["name"]
            if name not in BEARINGS:
                raise SpecError(f"unknown bearing {name!r}; known: {sorted(BEARINGS)}")
            kwargs["bearing"] = BEARINGS[name]
        elif isinstance(bearing, dict):
            try:
                kwargs["bearing"] = BearingGeometry(**bearing)
            except (TypeError, ValueError) as err:
                raise SpecError(f"bearing: {err}") from err
        fault = dict(data.get("fault", {}))
        if "mode" in fault:
            kwargs["fault"] = fault.pop("mode")
        kwargs.update(fault)
        kwargs.update(data.get("simulation", {}))
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise SpecError(str(err)) from err


def load_spec(path: str | Path) -> MachineSpec:
    """Read a machine spec from a ``.toml`` or ``.json`` file, or a shipped one by name.

    Shipped examples (simulators/specs): ``pump_outer_race``, ``fan_healthy``.
    """
    p = Path(path)
    if not p.exists() and not p.suffix:
        p = Path(__file__).with_name("specs") / f"{p.name}.toml"
    try:
        if p.suffix.lower() == ".toml":
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        else:
            data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SpecError(f"cannot read machine spec {p}: {err}") from err
    if not isinstance(data, dict):
        raise SpecError(f"machine spec {p} must be a table/object")
    return MachineSpec.from_dict(data)
