"""The fleet registry: which gateways exist and which assets each may report for.

Ingestion asks per message, so answers are cached for a few seconds; a gateway or
asset added through the API is seen after at most one TTL.
"""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.engine import SessionFactory
from cloud.db.models import Asset, Gateway, Site
from cloud.domain.customers import CustomerSpec, SiteSpec, put_customer, put_site
from cloud.domain.errors import DomainError, InvalidInputError
from cloud.domain.vocabulary import AssetKind, CustomerTier
from ironwatch.errors import describe_validation_error
from ironwatch.ids import Id
from ironwatch.physics import AssetPhysics

__all__ = [
    "DbAssetRegistry",
    "FleetAsset",
    "FleetFile",
    "FleetGateway",
    "seed_fleet",
]



class FleetGateway(BaseModel):
    """A `[[gateways]]` entry of the fleet file."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    name: str = ""


class FleetAsset(BaseModel):
    """An `[[assets]]` entry of the fleet file."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    gateway_id: Id
    name: str = ""
    kind: AssetKind = "motor"
    location: str = ""
    physics: AssetPhysics | None = Field(
        default=None, description="absent: kept as stored, or learned from the gateway"
    )
    site_id: Id | None = Field(default=None, description="the site (and customer) owning it")
    customer_tier: CustomerTier | None = Field(
        default=None, description="only for an asset without a site (default standard)"
    )
    running_hours: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _tier_from_site(self) -> FleetAsset:
        if self.site_id is not None and self.customer_tier is not None:
            raise ValueError(
                f"asset {self.id}: the tier of an asset with a site comes from its customer; "
                "drop customer_tier"
            )
        return self


class FleetFile(BaseModel):
    """A fleet file: customers and their sites, gateways and the assets each reports for."""

    model_config = ConfigDict(extra="forbid")

    customers: list[CustomerSpec] = Field(default_factory=list)
    sites: list[SiteSpec] = Field(default_factory=list)
    gateways: list[FleetGateway] = Field(default_factory=list)
    assets: list[FleetAsset] = Field(default_factory=list)


def _parse_fleet(path_or_dict: Path | str | Mapping[str, Any]) -> FleetFile:
    if isinstance(path_or_dict, Mapping):
        raw: Mapping[str, Any] = path_or_dict
        where = "fleet"
    else:
        where = str(path_or_dict)
        try:
            raw = tomllib.loads(Path(path_or_dict).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise InvalidInputError(f"cannot read fleet file {where}: {err}") from err
    try:
        fleet = FleetFile.model_validate(raw)
    except ValidationError as err:
        raise InvalidInputError(
            f"invalid fleet file {where}: {describe_validation_error(err)}",
            details={"errors": err.errors(include_url=False)},
        ) from err
    known = {g.id for g in fleet.gateways}
    unknown = sorted({a.gateway_id for a in fleet.assets} - known)
    if unknown:
        raise InvalidInputError(f"assets refer to gateways not in {where}: {', '.join(unknown)}")
    return fleet


def seed_fleet(session: Session, path_or_dict: Path | str | Mapping[str, Any]) -> FleetFile:
    """Upsert the customers, sites, gateways and assets of a fleet TOML file (or its parsed
    dict); not committed.

    Running hours already counted in the database are kept unless the file gives a value;
    so is the physics (perhaps learned from the gateway's birth message). Sites and assets
    may refer to customers and sites already in the database.
    """
    fleet = _parse_fleet(path_or_dict)
    for c in fleet.customers:
        put_customer(session, c)
    for site in fleet.sites:
        try:
            put_site(session, site)
        except DomainError as err:
            raise InvalidInputError(f"site {site.id}: {err.message}") from err
    for a in fleet.assets:
        if a.site_id is not None and session.get(Site, a.site_id) is None:
            raise InvalidInputError(f"asset {a.id}: site {a.site_id} not found")
    for g in fleet.gateways:
        gateway = session.get(Gateway, g.id)
        if gateway is None:
            session.add(Gateway(id=g.id, name=g.name or g.id, status={}))
        elif g.name:
            gateway.name = g.name
    session.flush()
    for a in fleet.assets:
        asset = session.get(Asset, a.id)
        if asset is None:
            asset = Asset(id=a.id, running_hours=0.0)
            session.add(asset)
        asset.gateway_id = a.gateway_id
        asset.name = a.name or a.id
        asset.kind = a.kind
        asset.location = a.location
        asset.site_id = a.site_id
        asset.customer_tier = a.customer_tier or "standard"
        if a.running_hours is not None:
            asset.running_hours = a.running_hours
        if a.physics is not None:
            asset.physics = a.physics
    session.flush()
    return fleet


class DbAssetRegistry:
    """Answers ingestion's "may this gateway report for this asset?" from the database."""

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session_factory = session_factory
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._assets_by_gateway: dict[str, frozenset[str]] = {}

    def _snapshot(self) -> dict[str, frozenset[str]]:
        # One query for the whole fleet: cheaper than a query per message, and the
        # fleet (thousands of rows) fits in memory easily.
        with self._lock:
            now = self._clock()
            if self._loaded_at is not None and now - self._loaded_at < self._ttl_s:
                return self._assets_by_gateway
            with self._session_factory() as session:
                gateways = session.scalars(select(Gateway.id)).all()
                rows = session.execute(select(Asset.gateway_id, Asset.id)).all()
            mapping: dict[str, set[str]] = {g: set() for g in gateways}
            for gateway_id, asset_id in rows:
                if gateway_id is not None:
                    mapping.setdefault(gateway_id, set()).add(asset_id)
            self._assets_by_gateway = {g: frozenset(a) for g, a in mapping.items()}
            self._loaded_at = now
            return self._assets_by_gateway

    def invalidate(self) -> None:
        """Forget the cache; the API calls it after changing gateways or assets."""
        with self._lock:
            self._loaded_at = None

    def gateway_known(self, gateway_id: str) -> bool:
        """True if the gateway is registered."""
        return gateway_id in self._snapshot()

    def asset_allowed(self, gateway_id: str, asset_id: str) -> bool:
        """True if the asset is registered under this gateway."""
        return asset_id in self._snapshot().get(gateway_id, frozenset())

    def assets_of(self, gateway_id: str) -> frozenset[str]:
        """The asset ids registered under a gateway (empty if unknown)."""
        return self._snapshot().get(gateway_id, frozenset())
