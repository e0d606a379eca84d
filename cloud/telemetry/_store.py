"""The TelemetryStore interface every backend implements (embedded SQLite, InfluxDB, ...).

Writes are idempotent on (gateway_id, record seq): MQTT QoS 1 redelivers, and a gateway
replays its outbox after a reconnect, so the same record may arrive more than once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from cloud.telemetry._frame import FeatureFrame, TimeLike
from ironwatch.wire import FeatureRecord, WaveformSnapshot

__all__ = ["TelemetryReader", "TelemetryStore"]


@runtime_checkable
class TelemetryReader(Protocol):
    """The read side of a TelemetryStore: what the API and the dashboard use."""

    def query(
        self,
        *,
        asset_ids: Sequence[str] | None = None,
        point: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        features: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> FeatureFrame:
        """Records in [start, end) ordered by time (then gateway, seq); the first `limit` rows.

        `features` picks and orders the columns (absent ones are NaN); by default every
        feature with a value in the result, sorted by name. Times: datetime or epoch seconds.
        """
        ...

    def count(self, *, gateway_id: str | None = None, asset_id: str | None = None) -> int:
        """How many records are stored (optionally of one gateway and/or one asset)."""
        ...

    def latest_snapshot(self, asset_id: str, point: str | None = None) -> WaveformSnapshot | None:
        """The most recent waveform of an asset (optionally of one point), or None."""
        ...


@runtime_checkable
class TelemetryStore(TelemetryReader, Protocol):
    """Where feature records and waveform snapshots live; safe to call from several threads."""

    def write(self, gateway_id: str, records: Sequence[FeatureRecord]) -> int:
        """Store records of one gateway; return how many were new (the rest were duplicates)."""
        ...

    def duplicate_count(self) -> int:
        """Stored rows beyond one per (gateway_id, seq): 0 unless idempotency is broken."""
        ...

    def save_snapshot(self, snapshot: WaveformSnapshot) -> bool:
        """Keep a raw waveform; return False if this (gateway, seq) was already stored."""
        ...

    def close(self) -> None:
        """Release connections and files; the store is unusable afterwards."""
        ...
