"""An asset's physics: shaft speed, measurement points with their bearings, ISO 10816-3 class.

One type each, shared by every role: the gateway config, the gateway's birth message,
the cloud's fleet file, API and database, and the callers of `models/`. A bearing is
validated here and only here; `BearingSpec.geometry()` hands the models the plain numbers
(they accept any object with the four attributes, see `models.bearing.BearingLike`).

Shaft speed has one name and one unit, `speed_rpm`; `rpm_to_hz` is the one conversion to
the shaft frequency the spectral maths works in.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ironwatch.ids import Id

__all__ = [
    "DEFAULT_FOUNDATION",
    "DEFAULT_ISO_GROUP",
    "MAX_SPEED_RPM",
    "AssetPhysics",
    "BearingGeometry",
    "BearingSpec",
    "Foundation",
    "IsoGroup",
    "MeasurementPoint",
    "PhysicsDifference",
    "iso_class",
    "rpm_to_hz",
]

#: ISO 10816-3 machine groups with evaluation zones in `models.diagnosis`:
#: 1 large machines (300 kW-50 MW), 2 medium machines (15-300 kW).
IsoGroup = Literal[1, 2]
Foundation = Literal["rigid", "flexible"]
# An asset whose class is not stated is judged as group 2 on a rigid foundation: that row
# has the lowest zone limits, so leaving the class out is never more lenient.
DEFAULT_ISO_GROUP: IsoGroup = 2
DEFAULT_FOUNDATION: Foundation = "rigid"
MAX_SPEED_RPM = 200_000.0

_Millimetres = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]


def rpm_to_hz(speed_rpm: float) -> float:
    """The shaft frequency in Hz of a shaft turning at `speed_rpm`."""
    return speed_rpm / 60.0


class _Physics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BearingGeometry(NamedTuple):
    """The numbers the defect-frequency maths needs, already validated by `BearingSpec`."""

    n_balls: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float


class BearingSpec(_Physics):
    """A rolling-element bearing: ball count, ball and pitch diameter, contact angle."""

    n_balls: int = Field(strict=True, ge=3, description="rolling elements in one row")
    ball_diameter_mm: _Millimetres
    pitch_diameter_mm: _Millimetres
    contact_angle_deg: float = Field(default=0.0, strict=True, ge=0, lt=90)
    designation: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]*$",
        description="catalogue name, e.g. 'SKF 6205'",
    )

    @model_validator(mode="after")
    def _pitch_exceeds_ball(self) -> BearingSpec:
        if not self.pitch_diameter_mm > self.ball_diameter_mm:
            raise ValueError(
                f"pitch_diameter_mm ({self.pitch_diameter_mm:g}) must exceed "
                f"ball_diameter_mm ({self.ball_diameter_mm:g})"
            )
        return self

    def geometry(self) -> BearingGeometry:
        """The geometry as plain numbers, for `models.features` and `models.diagnosis`."""
        return BearingGeometry(
            self.n_balls, self.ball_diameter_mm, self.pitch_diameter_mm, self.contact_angle_deg
        )


class MeasurementPoint(_Physics):
    """Where a sensor sits on the machine, e.g. 'de_radial', and the bearing under it."""

    id: Id
    bearing: BearingSpec | None = None
    description: str = Field(default="", max_length=200, pattern=r"^[^\x00]*$")


class PhysicsDifference(NamedTuple):
    """One field on which two descriptions of the same asset disagree."""

    field: str
    ours: Any
    theirs: Any


class AssetPhysics(_Physics):
    """What the models need to know about a machine; any part may still be unknown (None).

    Points may be given by id alone (`points = ["de_radial"]`).
    """

    speed_rpm: float | None = Field(
        default=None, strict=True, gt=0, le=MAX_SPEED_RPM, description="nominal shaft speed"
    )
    iso_group: IsoGroup | None = None
    foundation: Foundation | None = None
    points: tuple[MeasurementPoint, ...] = ()

    @field_validator("points", mode="before")
    @classmethod
    def _ids_stand_for_points(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [{"id": p} if isinstance(p, str) else p for p in value]
        return value

    @field_validator("points")
    @classmethod
    def _unique(cls, value: tuple[MeasurementPoint, ...]) -> tuple[MeasurementPoint, ...]:
        ids = [p.id for p in value]
        if len(set(ids)) != len(ids):
            raise ValueError("point ids must be unique within an asset")
        return value

    @property
    def point_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.points)

    @property
    def shaft_hz(self) -> float | None:
        """The nominal shaft frequency in Hz, or None when the speed is unknown."""
        return None if self.speed_rpm is None else rpm_to_hz(self.speed_rpm)

    def point(self, point_id: str) -> MeasurementPoint | None:
        """The measurement point with this id, or None."""
        return next((p for p in self.points if p.id == point_id), None)

    def bearing_at(self, point_id: str) -> BearingSpec | None:
        """The bearing under a measurement point, or None if none is known."""
        point = self.point(point_id)
        return None if point is None else point.bearing

    def differences(self, other: AssetPhysics) -> list[PhysicsDifference]:
        """Where `other` contradicts this description, in a stable order.

        Something one side does not state (None, no points, no bearing) is unknown, not a
        contradiction; a point that only one side lists is one.
        """
        out: list[PhysicsDifference] = []
        for name in ("speed_rpm", "iso_group", "foundation"):
            ours, theirs = getattr(self, name), getattr(other, name)
            if ours is not None and theirs is not None and not _same(ours, theirs):
                out.append(PhysicsDifference(name, ours, theirs))
        if not self.points or not other.points:
            return out
        theirs_by_id = {p.id: p for p in other.points}
        ours_by_id = {p.id: p for p in self.points}
        for point_id in [*ours_by_id, *(i for i in theirs_by_id if i not in ours_by_id)]:
            mine, yours = ours_by_id.get(point_id), theirs_by_id.get(point_id)
            if mine is None or yours is None:
                out.append(PhysicsDifference(
                    f"points.{point_id}",
                    None if mine is None else mine.model_dump(),
                    None if yours is None else yours.model_dump(),
                ))
            elif mine.bearing is not None and yours.bearing is not None:
                for field in BearingSpec.model_fields:
                    a, b = getattr(mine.bearing, field), getattr(yours.bearing, field)
                    if a is not None and b is not None and not _same(a, b):
                        out.append(PhysicsDifference(f"points.{point_id}.bearing.{field}", a, b))
        return out

    def completed_by(self, other: AssetPhysics) -> AssetPhysics:
        """This description with what it leaves unknown taken from `other`."""
        points = self.points or other.points
        if self.points and other.points:
            points = tuple(
                p if p.bearing is not None or (o := other.point(p.id)) is None
                else p.model_copy(update={"bearing": o.bearing})
                for p in self.points
            )
        return AssetPhysics(
            speed_rpm=self.speed_rpm if self.speed_rpm is not None else other.speed_rpm,
            iso_group=self.iso_group if self.iso_group is not None else other.iso_group,
            foundation=self.foundation if self.foundation is not None else other.foundation,
            points=points,
        )


def _same(a: Any, b: Any) -> bool:
    # A TOML 1480 and a JSON 1480.0000000001 are the same machine.
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def iso_class(physics: AssetPhysics | None) -> tuple[IsoGroup, Foundation]:
    """The ISO 10816-3 (group, foundation) an asset is judged by; unstated parts default."""
    group = physics.iso_group if physics is not None else None
    foundation = physics.foundation if physics is not None else None
    return (group or DEFAULT_ISO_GROUP, foundation or DEFAULT_FOUNDATION)
