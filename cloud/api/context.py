"""What the API needs from the running service, gathered in one object on `app.state`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cloud.db.engine import SessionFactory
from cloud.domain.catalogue import FailureModeCatalogue, default_catalogue
from cloud.domain.clock import utc_now
from cloud.domain.policy import DEFAULT_POLICY, ServiceLevelPolicy
from cloud.settings import CloudSettings

__all__ = ["ApiContext", "FleetCache", "Notifier", "TelemetryReader"]


class TelemetryReader(Protocol):
    """The part of cloud.telemetry.TelemetryStore the API uses: reading features back."""

    def query(
        self,
        *,
        asset_ids: Sequence[str] | None = None,
        point: str | None = None,
        start: datetime | float | int | None = None,
        end: datetime | float | int | None = None,
        features: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Any:
        """A FeatureFrame: columns gateway_ids, seqs, asset_ids, points, ts_ns, values, ..."""
        ...

    def count(self, *, gateway_id: str | None = None, asset_id: str | None = None) -> int:
        """How many records are stored, for one gateway or asset or in all."""
        ...


class Notifier(Protocol):
    """Something to poke after a commit that queued webhooks (the webhook dispatcher)."""

    def wake(self) -> None:
        """Deliver soon."""
        ...


class FleetCache(Protocol):
    """A cache of the fleet to drop when gateways or assets change (the ingestion registry)."""

    def invalidate(self) -> None:
        """Forget cached gateways and assets."""
        ...


@dataclass
class ApiContext:
    """Settings, storage and policies shared by every request."""

    settings: CloudSettings
    session_factory: SessionFactory
    telemetry: TelemetryReader | None = None
    policy: ServiceLevelPolicy = DEFAULT_POLICY
    catalogue: FailureModeCatalogue = field(default_factory=default_catalogue)
    notifier: Notifier | None = None
    registry: FleetCache | None = None
    clock: Callable[[], datetime] = utc_now

    def fleet_changed(self) -> None:
        """Tell the ingestion registry cache that gateways or assets changed."""
        if self.registry is not None:
            self.registry.invalidate()

    def webhooks_queued(self) -> None:
        """Wake the webhook worker after a commit that queued deliveries."""
        if self.notifier is not None:
            self.notifier.wake()
