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
from typing import TYPE_CHECKING, Any, Literal

from models.bearing import BearingGeometry

if TYPE_CHECKING:
    from ironwatch.physics import AssetPhysics

__all__ = [
    "BEARINGS",
    "CHANNEL_POINTS",
    "ISO_ZONE_LIMITS_MMS",
    "SLIP_FACTOR_RANGE",
    "FaultMode",
    "LoadStep",
    "MachineSpec",
    "PointSpec",
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


#: Range a drawn defect-frequency factor falls in (slip, load angle, speed tolerance).
SLIP_FACTOR_RANGE: tuple[float, float] = (0.96, 1.0)
#: Sensor sample rates a spec may name (5 kHz to 51.2 kHz, as real accelerometer front ends).
SENSOR_RATE_RANGE_HZ: tuple[float, float] = (5_000.0, 51_200.0)


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
class LoadStep:
    """From machine age ``at_h`` on, the shaft turns at ``speed_rpm`` under ``load_pct``."""

    at_h: float
    speed_rpm: float
    load_pct: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.at_h) and 60.0 <= self.speed_rpm <= 12_000.0
                and 0.0 <= self.load_pct <= 120.0):
            raise SpecError(f"load step {self!r}: at_h finite, speed_rpm 60-12000, load_pct 0-120")


@dataclass(frozen=True)
class PointSpec:
    """A measurement point on a multi-point machine, in shaft order, with its own bearing."""

    id: str
    bearing: BearingGeometry

    def __post_init__(self) -> None:
        if not self.id or not self.id.replace("_", "").replace("-", "").isalnum():
            raise SpecError(f"point id {self.id!r}: letters, digits, '_' or '-'")


def _bearing(value: Any, where: str) -> BearingGeometry:
    """A bearing given by catalogue name, as ``{name = ...}`` or by its geometry."""
    if isinstance(value, BearingGeometry):
        return value
    if isinstance(value, str) or (isinstance(value, dict) and "name" in value):
        name = value if isinstance(value, str) else value["name"]
        if name not in BEARINGS:
            raise SpecError(f"{where}: unknown bearing {name!r}; known: {sorted(BEARINGS)}")
        return BEARINGS[name]
    if isinstance(value, dict):
        try:
            return BearingGeometry(**value)
        except (TypeError, ValueError) as err:
            raise SpecError(f"{where}: {err}") from err
    raise SpecError(f"{where}: a bearing name or geometry table, got {value!r}")


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
    #: Bearing temperature rise over ambient at 100 % load, °C (see simulators.baseline).
    load_heating_c: float = 30.0
    #: Structural resonance excited by bearing impacts, per machine (None: drawn from seed).
    resonance_hz: float | None = None
    # -- realism: each trick is off by default ---------------------------------------------
    #: Defect lines off kinematic by a factor drawn in SLIP_FACTOR_RANGE from the seed.
    slip: bool = False
    #: An explicit defect-frequency factor (wins over ``slip``); 1.0 is kinematic.
    defect_factor: float | None = None
    #: Sensor sample rate (None: the caller's, default 25.6 kHz).
    sample_rate_hz: float | None = None
    #: A real accelerometer front end: anti-alias roll-off below fs/2, resonances above the
    #: passband unseen (rather than moved into it).
    band_limited: bool = False
    #: Burst sensor: capture ``burst_samples`` every ``burst_period_s`` wall seconds, then
    #: silence (None: continuous streaming).
    burst_period_s: float | None = None
    burst_samples: int = 16_384
    #: Measurement points in shaft order, one radial channel each (empty: one point, 3 axes).
    points: tuple[PointSpec, ...] = ()
    #: The point whose bearing fails (None: the first point).
    failing_point: str | None = None
    #: Fault vibration carried to a point 1, 2, ... points away (the last repeats).
    transmission: tuple[float, ...] = (0.3, 0.1)
    #: Speed/load changes at known ages, in age order.
    load_steps: tuple[LoadStep, ...] = ()

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
            "load_heating_c": 0.0 <= self.load_heating_c <= 120.0,
            "resonance_hz": self.resonance_hz is None or self.resonance_hz > 100.0,
            "defect_factor": self.defect_factor is None
            or 0.8 <= self.defect_factor <= 1.2,
            "sample_rate_hz": self.sample_rate_hz is None
            or SENSOR_RATE_RANGE_HZ[0] <= self.sample_rate_hz <= SENSOR_RATE_RANGE_HZ[1],
            "burst_period_s": self.burst_period_s is None
            or (math.isfinite(self.burst_period_s) and self.burst_period_s > 0),
            "burst_samples": 64 <= self.burst_samples <= 1 << 20,
            "transmission": bool(self.transmission)
            and all(0.0 <= g <= 1.0 for g in self.transmission),
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
        object.__setattr__(self, "points", tuple(
            p if isinstance(p, PointSpec) else PointSpec(p["id"], _bearing(p.get("bearing"),
                                                                           f"point {p['id']}"))
            for p in self.points))
        object.__setattr__(self, "load_steps", tuple(
            s if isinstance(s, LoadStep) else LoadStep(**s) for s in self.load_steps))
        object.__setattr__(self, "transmission", tuple(float(g) for g in self.transmission))
        ids = [p.id for p in self.points]
        if len(set(ids)) != len(ids):
            raise SpecError(f"point ids must be unique, got {ids}")
        if self.failing_point is not None and self.failing_point not in ids:
            raise SpecError(f"failing_point={self.failing_point!r} is not one of {ids}")
        ages = [s.at_h for s in self.load_steps]
        if ages != sorted(ages):
            raise SpecError("load_steps must be in age order")

    @property
    def failing_bearing(self) -> BearingGeometry:
        """The bearing whose defect frequencies a bearing fault shows."""
        if not self.points:
            return self.bearing
        return self.points[self.point_ids.index(self.failing_point_id)].bearing

    @property
    def point_ids(self) -> tuple[str, ...]:
        """Measurement point ids, one per channel of a multi-point machine."""
        return tuple(p.id for p in self.points) or CHANNEL_POINTS

    @property
    def failing_point_id(self) -> str:
        return self.failing_point or self.point_ids[0]

    def transmission_gains(self) -> tuple[float, ...]:
        """Share of the failing bearing's vibration seen at each point (1 at its own)."""
        if not self.points:
            return (1.0, 1.0, 1.0)
        k = self.point_ids.index(self.failing_point_id)
        t = self.transmission
        return tuple(
            1.0 if i == k else t[min(abs(i - k), len(t)) - 1] for i in range(len(self.points))
        )

    def operating_point(self, age_h: float) -> tuple[float, float]:
        """(speed_rpm, load_pct) at a machine age, after the load steps up to it."""
        speed, load = self.speed_rpm, self.load_pct
        for step in self.load_steps:
            if step.at_h <= age_h:
                speed, load = step.speed_rpm, step.load_pct
        return speed, load

    def physics(self) -> AssetPhysics:
        """The asset physics the gateway and cloud are given for this machine."""
        from ironwatch.physics import AssetPhysics, BearingSpec, MeasurementPoint

        points = self.points or (PointSpec(CHANNEL_POINTS[0], self.bearing),)
        return AssetPhysics(
            speed_rpm=float(self.speed_rpm), iso_group=self.iso_group,
            foundation=self.foundation,
            points=tuple(
                MeasurementPoint(id=p.id, bearing=BearingSpec(
                    n_balls=p.bearing.n_balls,
                    ball_diameter_mm=float(p.bearing.ball_diameter_mm),
                    pitch_diameter_mm=float(p.bearing.pitch_diameter_mm),
                    contact_angle_deg=float(p.bearing.contact_angle_deg),
                ))
                for p in points
            ),
        )

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
        realism = {k: flat.pop(k) for k in _REALISM}
        sensor = {k: flat.pop(k) for k in _SENSOR}
        points = flat.pop("points")
        steps = flat.pop("load_steps")
        fault["point"] = flat.pop("failing_point")
        fault["transmission"] = list(flat.pop("transmission"))
        out: dict[str, Any] = {"machine": flat, "bearing": bearing, "fault": fault,
                               "simulation": sim, "realism": realism, "sensor": sensor}
        if points:
            out["points"] = points
        if steps:
            out["load_steps"] = steps
        # TOML has no null: leave unset options out.
        for section in out.values():
            if isinstance(section, dict):
                for key in [k for k, v in section.items() if v is None]:
                    section.pop(key)
        flat["id"] = flat.pop("machine_id")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MachineSpec:
        """Build from the nested shape (machine, bearing, fault, simulation, realism, sensor,
        points, load_steps)."""
        unknown = set(data) - {"machine", "bearing", "fault", "simulation", "realism", "sensor",
                               "points", "load_steps"}
        if unknown:
            raise SpecError(f"unknown spec sections: {sorted(unknown)}")
        kwargs: dict[str, Any] = dict(data.get("machine", {}))
        if "id" in kwargs:
            kwargs["machine_id"] = kwargs.pop("id")
        if data.get("bearing") is not None:
            kwargs["bearing"] = _bearing(data["bearing"], "bearing")
        fault = dict(data.get("fault", {}))
        if "mode" in fault:
            kwargs["fault"] = fault.pop("mode")
        if "point" in fault:
            kwargs["failing_point"] = fault.pop("point")
        if "transmission" in fault:
            kwargs["transmission"] = tuple(fault.pop("transmission"))
        kwargs.update(fault)
        for section, names in (("realism", _REALISM), ("sensor", _SENSOR)):
            table = dict(data.get(section, {}))
            if set(table) - set(names):
                raise SpecError(f"[{section}]: unknown keys {sorted(set(table) - set(names))}")
            kwargs.update(table)
        kwargs.update(data.get("simulation", {}))
        try:
            if "points" in data:
                kwargs["points"] = tuple(
                    PointSpec(str(p["id"]), _bearing(p.get("bearing"), f"point {p.get('id')}"))
                    for p in data["points"]
                )
            if "load_steps" in data:
                kwargs["load_steps"] = tuple(LoadStep(**s) for s in data["load_steps"])
            return cls(**kwargs)
        except (TypeError, KeyError) as err:
            raise SpecError(str(err)) from err


_REALISM = ("slip", "defect_factor", "band_limited")
_SENSOR = ("sample_rate_hz", "burst_period_s", "burst_samples")


def load_spec(path: str | Path) -> MachineSpec:
    """Read a machine spec from a ``.toml`` or ``.json`` file, or a shipped one by name.

    Shipped examples (simulators/specs): ``pump_outer_race``, ``fan_healthy``,
    ``shaft_four_bearings``.
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
