"""What the web front ends need from the running service, gathered in one object.

The REST API and the dashboard read the same `ApiContext` from `app.state` through one
dependency (`cloud.api.deps.ContextDep`), whether the app is the whole cloud service or
an API or dashboard built alone for a test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from cloud.db.engine import SessionFactory
from cloud.domain.catalogue import FailureModeCatalogue, default_catalogue
from cloud.domain.clock import utc_now
from cloud.domain.policy import DEFAULT_POLICY, ServiceLevelPolicy
from cloud.settings import CloudSettings
from cloud.telemetry import TelemetryReader

if TYPE_CHECKING:
    from cloud.ingest import IngestStats
    from cloud.pipeline import AssetScoring, ScoringStatus

__all__ = [
    "ApiContext",
    "FleetCache",
    "IngestStatsSource",
    "Notifier",
    "ScoringMonitor",
    "SnapshotRequester",
    "TelemetryReader",
]

# (asset_id, point or None, actor) -> command id; sends a snapshot command to the gateway.
SnapshotRequester = Callable[[str, str | None, str], str]
# The running ingestion worker's counters and the dead letters dropped (None: no worker).
IngestStatsSource = Callable[[], "tuple[IngestStats, int] | None"]


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


class ScoringMonitor(Protocol):
    """The scoring pipeline's health (cloud.pipeline.ScoringHealth): failing assets, lag."""

    def status(self, now: datetime | None = None) -> ScoringStatus:
        """ok or degraded, with the reasons."""
        ...

    def asset(self, asset_id: str) -> AssetScoring | None:
        """One asset's last scored round and its failure, if any."""
        ...


@dataclass
class ApiContext:
    """Settings, storage, policies and the command channel shared by every request."""

    settings: CloudSettings
    session_factory: SessionFactory
    telemetry: TelemetryReader | None = None
    policy: ServiceLevelPolicy = DEFAULT_POLICY
    catalogue: FailureModeCatalogue = field(default_factory=default_catalogue)
    notifier: Notifier | None = None
    registry: FleetCache | None = None
    clock: Callable[[], datetime] = utc_now
    request_snapshot: SnapshotRequester | None = None
    ingest_stats: IngestStatsSource | None = None
    # Set once scoring runs in this process; None: no scoring here (no "scoring" in health).
    scoring: ScoringMonitor | None = None

    def fleet_changed(self) -> None:
        """Tell the ingestion registry cache that gateways or assets changed."""
        if self.registry is not None:
            self.registry.invalidate()

    def webhooks_queued(self) -> None:
        """Wake the webhook worker after a commit that queued deliveries."""
        if self.notifier is not None:
            self.notifier.wake()
