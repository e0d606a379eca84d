"""The fleet registry: which gateways exist and which assets each may report for.

Ingestion asks per message, so answers come from memory, refreshed every few seconds
with the rows that changed; a gateway or asset added through the API is seen after at
most one TTL.
"""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select
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
    """Answers ingestion's "may this gateway report for this asset?" from the database.

    The answers come from memory. Every `ttl_s` the registry reads what changed: assets
    updated (their `updated_at`) and gateways created since the newest change it has seen,
    with `overlap_s` of margin for transactions that committed late, plus the two row
    counts. A count that disagrees with memory (a deletion) and every `full_reload_s`
    reload everything; so does `invalidate()`, which the API calls after its changes.
    At 50,000 assets an incremental refresh reads a few rows instead of the fleet.
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        overlap_s: float = 60.0,
        full_reload_s: float = 300.0,
    ) -> None:
        self._session_factory = session_factory
        self._ttl_s = ttl_s
        self._clock = clock
        self._overlap = timedelta(seconds=overlap_s)
        self._full_reload_s = full_reload_s
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._full_at: float | None = None
        self._watermark: datetime | None = None
        self._assets_by_gateway: dict[str, set[str]] = {}
        self._gateway_of: dict[str, str | None] = {}
        self.full_reloads = 0
        self.incremental_reloads = 0

    def _snapshot(self) -> dict[str, set[str]]:
        with self._lock:
            now = self._clock()
            if self._loaded_at is not None and now - self._loaded_at < self._ttl_s:
                return self._assets_by_gateway
            with self._session_factory() as session:
                if (self._full_at is None or self._watermark is None
                        or now - self._full_at >= self._full_reload_s
                        or not self._refresh(session, self._watermark)):
                    self._reload(session)
                    self._full_at = now
            self._loaded_at = now
            return self._assets_by_gateway

    def _reload(self, session: Session) -> None:
        """Read the whole fleet (at start, after a deletion, and now and then)."""
        gateways = session.scalars(select(Gateway.id)).all()
        rows = session.execute(select(Asset.id, Asset.gateway_id, Asset.updated_at)).all()
        mapping: dict[str, set[str]] = {g: set() for g in gateways}
        gateway_of: dict[str, str | None] = {}
        for asset_id, gateway_id, _ in rows:
            gateway_of[asset_id] = gateway_id
            if gateway_id is not None:
                mapping.setdefault(gateway_id, set()).add(asset_id)
        # Readers use the new dicts whole; the old ones stay valid for a reader holding them.
        self._assets_by_gateway = mapping
        self._gateway_of = gateway_of
        newest = [_aware(u) for _, _, u in rows]
        newest += [_aware(c) for c in session.scalars(select(Gateway.created_at)).all()]
        self._watermark = max(newest, default=datetime.min.replace(tzinfo=UTC))
        self.full_reloads += 1

    def _refresh(self, session: Session, watermark: datetime) -> bool:
        """Apply the rows changed since `watermark`; False if memory disagrees with the
        row counts (something was deleted) and a full reload is needed."""
        since = watermark - self._overlap
        gateways = session.execute(
            select(Gateway.id, Gateway.created_at).where(Gateway.created_at >= since)).all()
        assets = session.execute(
            select(Asset.id, Asset.gateway_id, Asset.updated_at)
            .where(Asset.updated_at >= since)).all()
        n_gateways = session.scalar(select(func.count()).select_from(Gateway))
        n_assets = session.scalar(select(func.count()).select_from(Asset))
        mapping, gateway_of = self._assets_by_gateway, self._gateway_of
        for new_gateway, created in gateways:
            mapping.setdefault(new_gateway, set())
            watermark = max(watermark, _aware(created))
        for asset_id, gateway_id, updated in assets:
            old = gateway_of.get(asset_id)
            if old is not None and old != gateway_id and old in mapping:
                mapping[old].discard(asset_id)
            gateway_of[asset_id] = gateway_id
            if gateway_id is not None:
                mapping.setdefault(gateway_id, set()).add(asset_id)
            watermark = max(watermark, _aware(updated))
        self._watermark = watermark
        self.incremental_reloads += 1
        return n_gateways == len(mapping) and n_assets == len(gateway_of)

    def invalidate(self) -> None:
        """Forget the cache; the API calls it after changing gateways or assets."""
        with self._lock:
            self._loaded_at = None
            self._full_at = None

    def gateway_known(self, gateway_id: str) -> bool:
        """True if the gateway is registered."""
        return gateway_id in self._snapshot()

    def asset_allowed(self, gateway_id: str, asset_id: str) -> bool:
        """True if the asset is registered under this gateway."""
        return asset_id in self._snapshot().get(gateway_id, ())

    def assets_of(self, gateway_id: str) -> frozenset[str]:
        """The asset ids registered under a gateway (empty if unknown)."""
        return frozenset(self._snapshot().get(gateway_id, ()))


def _aware(value: datetime) -> datetime:
    """SQLite gives naive UTC times back; PostgreSQL aware ones."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
