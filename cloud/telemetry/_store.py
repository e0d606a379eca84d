"""The TelemetryStore interface every backend implements (embedded SQLite, InfluxDB, ...).

Writes are idempotent on (gateway_id, outbox epoch, record seq): MQTT QoS 1 redelivers,
and a gateway replays its outbox after a reconnect, so the same record may arrive more
than once. A record whose key is stored already with other content is a conflict: it is
not written (the first copy stays) and the caller is told its seq.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable

from cloud.telemetry._frame import FeatureFrame, TimeLike, datetime_to_ns
from ironwatch.wire import WaveformSnapshot

__all__ = [
    "LEGACY_EPOCH",
    "RecordGroup",
    "RecordWriter",
    "StorableRecord",
    "StoredRow",
    "TelemetryReader",
    "TelemetryStore",
    "WriteResult",
    "sort_out",
]

LEGACY_EPOCH = ""
"""The epoch of records stored before outbox epochs existed (and of `write` without one)."""


class StorableRecord(Protocol):
    """What a store reads of a feature record: `ironwatch.wire.FeatureRecord`'s fields.

    The contract's pydantic model has them, and so has ingestion's msgspec-decoded record
    (cloud.ingest._fastwire), which skips building a pydantic object per record.
    """

    @property
    def seq(self) -> int: ...
    @property
    def asset_id(self) -> str: ...
    @property
    def point(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def window_s(self) -> float: ...
    @property
    def stale(self) -> bool: ...
    @property
    def features(self) -> Mapping[str, float | None]: ...


class RecordGroup(NamedTuple):
    """The records of one gateway outbox epoch in a batch (what `write_batch` takes)."""

    gateway_id: str
    epoch: str
    records: Sequence[StorableRecord]


class RecordWriter:
    """`write` (how many records were new) and `write_batch` in terms of `write_records`.

    A backend that can write several gateways' records in one statement overrides
    `write_batch`; this one writes group after group.
    """

    def write_records(
        self, gateway_id: str, epoch: str, records: Sequence[StorableRecord]
    ) -> WriteResult:
        raise NotImplementedError

    def write_batch(self, groups: Sequence[RecordGroup]) -> list[WriteResult]:
        return [self.write_records(*group) for group in groups]

    def write(
        self, gateway_id: str, records: Sequence[StorableRecord], *, epoch: str = LEGACY_EPOCH
    ) -> int:
        return self.write_records(gateway_id, epoch, records).new


@dataclass(frozen=True)
class WriteResult:
    """What one write did: `new` records stored, exact `duplicates` ignored, `conflicts`
    (seqs already stored with other content) refused."""

    new: int = 0
    duplicates: int = 0
    conflicts: tuple[int, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A record's content as a store keeps it (features without the null ones)."""

    asset_id: str
    point: str
    ts_ns: int
    window_s: float
    stale: bool
    features: Mapping[str, float]

    @classmethod
    def of(cls, record: StorableRecord) -> StoredRow:
        return cls(
            asset_id=record.asset_id,
            point=record.point,
            ts_ns=datetime_to_ns(record.ts),
            window_s=float(record.window_s),
            stale=bool(record.stale),
            features={k: float(v) for k, v in record.features.items() if v is not None},
        )

    def same_as(self, other: StoredRow, *, ts_resolution_ns: int = 1) -> bool:
        """Equal content, up to the store's time resolution and float round-trip error."""
        if (self.asset_id, self.point, self.stale) != (other.asset_id, other.point, other.stale):
            return False
        if self.ts_ns // ts_resolution_ns != other.ts_ns // ts_resolution_ns:
            return False
        if not _close(self.window_s, other.window_s):
            return False
        if self.features.keys() != other.features.keys():
            return False
        return all(_close(v, other.features[k]) for k, v in self.features.items())


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)


def sort_out(
    records: Sequence[StorableRecord],
    existing: Mapping[int, StoredRow],
    *,
    ts_resolution_ns: int = 1,
) -> tuple[list[StorableRecord], WriteResult]:
    """Split one gateway epoch's records into those to write and a WriteResult.

    `existing` maps seqs already stored to their content. A repeat inside the batch is
    compared with its first copy, as if that one were stored already.
    """
    seqs = [r.seq for r in records]
    if existing.keys().isdisjoint(seqs) and len(set(seqs)) == len(seqs):
        # No repeat to compare (the usual batch): skip building each record's StoredRow.
        return list(records), WriteResult(len(records), 0, ())
    seen: dict[int, StoredRow] = dict(existing)
    to_write: list[StorableRecord] = []
    duplicates = 0
    conflicts: list[int] = []
    for r in records:
        row = StoredRow.of(r)
        stored = seen.get(r.seq)
        if stored is None:
            seen[r.seq] = row
            to_write.append(r)
        elif stored.same_as(row, ts_resolution_ns=ts_resolution_ns):
            duplicates += 1
        else:
            conflicts.append(r.seq)
    return to_write, WriteResult(len(to_write), duplicates, tuple(conflicts))


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

    def write_records(
        self, gateway_id: str, epoch: str, records: Sequence[StorableRecord]
    ) -> WriteResult:
        """Store records of one gateway outbox epoch; say which were new, repeats, conflicts.

        Raises StoreUnavailableError when retrying may help (connection, timeout, lock),
        RecordRejectedError when the store refuses the data itself; nothing of the batch
        is then guaranteed stored.
        """
        ...

    def write_batch(self, groups: Sequence[RecordGroup]) -> list[WriteResult]:
        """`write_records` for several gateway epochs at once: one WriteResult per group.

        SQLite writes them in one statement and one transaction, InfluxDB and
        VictoriaMetrics in one line-protocol body. On an error nothing of the batch is
        guaranteed stored (as for write_records): the ingestion worker then writes the
        groups one by one and splits a refused one until the culprit is alone.
        """
        ...

    def write(
        self, gateway_id: str, records: Sequence[StorableRecord], *, epoch: str = LEGACY_EPOCH
    ) -> int:
        """`write_records` returning only how many records were new."""
        ...

    def duplicate_count(self) -> int:
        """Stored rows beyond one per (gateway_id, epoch, seq): 0 unless idempotency is broken."""
        ...

    def save_snapshot(self, snapshot: WaveformSnapshot) -> bool:
        """Keep a raw waveform; return False if this (gateway, seq) was already stored."""
        ...

    def close(self) -> None:
        """Release connections and files; the store is unusable afterwards."""
        ...
