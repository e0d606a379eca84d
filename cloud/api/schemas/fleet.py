"""Schemas for gateways, assets and maintenance plans."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, computed_field, model_validator

from cloud.api.schemas.common import Id, InputModel, PublicModel, UtcTime
from cloud.api.schemas.scoring import AssetScoringPublic
from cloud.domain.vocabulary import AssetKind, CustomerTier, Priority
from ironwatch.physics import AssetPhysics

__all__ = [
    "AssetCreate",
    "AssetPublic",
    "AssetUpdate",
    "CustomerRef",
    "GatewayCreate",
    "GatewayCreated",
    "GatewayPublic",
    "GatewayStatusUpdate",
    "MaintenancePlanCreate",
    "MaintenancePlanPublic",
    "PhysicsMismatch",
    "RunningHoursUpdate",
]

_Name = Field(default="", max_length=200, pattern=r"^[^\x00]*$")


class GatewayCreate(InputModel):
    """Register a gateway; `with_credentials` returns a broker password once."""

    id: Id
    name: str = _Name
    with_credentials: bool = False


class GatewayPublic(PublicModel):
    """A gateway as the API shows it."""

    id: str
    name: str
    state: str
    last_seen: UtcTime | None
    last_seq: int | None
    software_version: str
    status: dict[str, Any]
    created_at: UtcTime
    asset_ids: list[str] = Field(default_factory=list)


class GatewayCreated(GatewayPublic):
    """The new gateway and, if asked for, its broker password (shown only now)."""

    password: str | None = None


class GatewayStatusUpdate(InputModel):
    """What a gateway reports about itself over REST (the same as its MQTT status)."""

    state: str = Field(pattern=r"^(online|offline)$")
    seq: int | None = Field(default=None, ge=0, le=2**53)
    software_version: str | None = Field(default=None, max_length=64, pattern=r"^[^\x00]*$")
    counters: dict[str, int] | None = None


class _AssetFields(InputModel):
    name: str = _Name
    kind: AssetKind = "motor"
    location: str = _Name
    physics: AssetPhysics | None = Field(
        default=None, description="absent: learned from the gateway's birth message"
    )
    customer_tier: CustomerTier = Field(
        default="standard",
        description="only for an asset without a site; with a site the customer's tier counts",
    )


class AssetCreate(_AssetFields):
    """A new asset under a registered gateway, on a customer's site."""

    id: Id
    gateway_id: Id
    site_id: Id | None = None
    running_hours: float = Field(default=0.0, ge=0, le=1e7)


class AssetUpdate(InputModel):
    """Fields to change on an asset; absent fields stay as they are."""

    gateway_id: Id | None = None
    site_id: Id | None = Field(default=None, description="null takes the asset off its site")
    name: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00]*$")
    kind: AssetKind | None = None
    location: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00]*$")
    physics: AssetPhysics | None = Field(
        default=None,
        description="replaces the whole physics; null forgets it, to learn the gateway's",
    )
    customer_tier: CustomerTier | None = None
    idle_velocity_mms: float | None = Field(default=None, gt=0, le=100)


class PhysicsMismatch(BaseModel):
    """One field on which the cloud's copy of an asset's physics and its gateway disagree."""

    field: str = Field(examples=["points.de_radial.bearing.n_balls"])
    cloud: Any
    gateway: Any


class CustomerRef(PublicModel):
    """The customer owning an asset, in brief."""

    id: str
    name: str
    tier: str


class AssetPublic(PublicModel):
    """An asset as the API shows it, with where its gateway disagrees about its physics."""

    id: str
    gateway_id: str | None
    site_id: str | None
    customer: CustomerRef | None = Field(description="the owner of the asset's site")
    tier: str = Field(description="the tier deadlines use: the customer's, else customer_tier")
    name: str
    kind: str
    location: str
    physics: AssetPhysics | None
    reported_physics: AssetPhysics | None = Field(
        description="the physics in the gateway's last birth message"
    )
    physics_reported_at: UtcTime | None
    customer_tier: str
    running_hours: float
    running_hours_at: UtcTime | None = Field(
        description="capture time of the last record the running hours account for"
    )
    running_hours_per_day: float | None = Field(
        description="recent running hours per calendar day (a week's exponential average)"
    )
    idle_velocity_mms: float | None = Field(
        description="vibration above which a record without a speed counts as running; "
        "null: a quarter of the ISO 10816-3 zone A/B boundary"
    )
    created_at: UtcTime
    updated_at: UtcTime
    # Filled where scoring runs in this process; null elsewhere and before its first round.
    scoring: AssetScoringPublic | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def physics_mismatch(self) -> list[PhysicsMismatch]:
        """Empty when the two agree (or one of them is not known yet)."""
        if self.physics is None or self.reported_physics is None:
            return []
        return [
            PhysicsMismatch(field=d.field, cloud=d.ours, gateway=d.theirs)
            for d in self.physics.differences(self.reported_physics)
        ]


class RunningHoursUpdate(InputModel):
    """Operating hours to add to an asset's counter, by hand; kept in its history."""

    add_hours: float = Field(ge=0, le=1e5)
    note: str = Field(default="", max_length=500, pattern=r"^[^\x00]*$")


_Line = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


class MaintenancePlanCreate(InputModel):
    """Maintenance of an asset every N running hours and/or every N days, whichever first."""

    interval_hours: float | None = Field(default=None, gt=0, le=1e6)
    interval_days: float | None = Field(default=None, gt=0, le=3660)
    name: str = _Name
    task: str = Field(
        default="scheduled_service", pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="the work order's failure mode (one open job per asset and task)",
    )
    priority: Priority = "P3"
    tasks: list[_Line] = Field(
        default_factory=list, max_length=50,
        description="steps copied onto each work order (else the catalogue's actions)",
    )
    parts: list[_Line] = Field(
        default_factory=list, max_length=50,
        description="spare parts copied onto each work order (else the catalogue's)",
    )

    @model_validator(mode="after")
    def _some_interval(self) -> MaintenancePlanCreate:
        if self.interval_hours is None and self.interval_days is None:
            raise ValueError("give interval_hours, interval_days or both")
        return self


class MaintenancePlanPublic(PublicModel):
    """A maintenance plan as the API shows it."""

    id: int
    asset_id: str | None = Field(description="the asset, for a plan of one asset")
    asset_kind: str | None = Field(description="the kind, for a plan of every asset of it")
    name: str
    task: str
    interval_hours: float | None
    interval_days: float | None
    priority: str
    tasks: list[str]
    parts: list[str]
    last_done_hours: float
    last_work_order_id: int | None
    active: bool
    created_at: UtcTime
