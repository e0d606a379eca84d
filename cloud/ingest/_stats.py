"""Counters of an ingestion worker, read as an immutable snapshot."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["IngestStats", "StatsCounter", "combine_stats"]

_MAX_GATEWAYS = 1000
_OTHER = "(other)"


@dataclass(frozen=True)
class IngestStats:
    """What a worker has done since it was created (counts survive stop/start, not restarts).

    `received` counts MQTT messages, `stored`/`duplicates` count records; `dead_lettered`
    counts dead letters (a refused message, or a single refused record) by reason code,
    `dead_lettered_by_gateway` the same per gateway ("-" when the topic names none).
    `store_give_ups` counts writes that waited for the store beyond the in-line retries.
    """

    received: int = 0
    records_received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    dead_lettered_by_gateway: dict[str, dict[str, int]] = field(default_factory=dict)
    records_refused: int = 0
    status_messages: int = 0
    snapshots: int = 0
    store_errors: int = 0
    callback_errors: int = 0
    store_give_ups: int = 0
    dead_letter_store_errors: int = 0
    epochs_seen: int = 0
    connects: int = 0
    disconnects: int = 0
    connected: bool = False
    last_message_at: datetime | None = None
    workers: int = 1
    worker_restarts: int = 0

    @property
    def dead_lettered_total(self) -> int:
        return sum(self.dead_lettered.values())

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["dead_lettered_total"] = self.dead_lettered_total
        d["last_message_at"] = self.last_message_at.isoformat() if self.last_message_at else None
        return d


class StatsCounter:
    """Mutable counters behind a lock; `snapshot()` gives an IngestStats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n: collections.Counter[str] = collections.Counter()
        self._dead: collections.Counter[str] = collections.Counter()
        self._dead_by_gateway: dict[str, collections.Counter[str]] = {}
        self._logged: dict[str, float] = {}
        self.connected = False
        self.last_message_at: datetime | None = None

    def add(self, **counts: int) -> None:
        with self._lock:
            self._n.update(counts)

    def dead_letter(self, reason_code: str, gateway_id: str | None = None) -> int:
        """Count one dead letter; return how many of this reason there are now."""
        with self._lock:
            self._dead[reason_code] += 1
            gw = gateway_id or "-"
            if gw not in self._dead_by_gateway and len(self._dead_by_gateway) >= _MAX_GATEWAYS:
                gw = _OTHER  # bounded: topics may name any number of unknown gateways
            self._dead_by_gateway.setdefault(gw, collections.Counter())[reason_code] += 1
            return self._dead[reason_code]

    def log_due(self, reason_code: str, every_s: float = 60.0) -> bool:
        """True at most once per every_s per reason: for a summary log line in a flood."""
        now = time.monotonic()
        with self._lock:
            if now - self._logged.get(reason_code, -every_s) < every_s:
                return False
            self._logged[reason_code] = now
            return True

    def snapshot(self) -> IngestStats:
        with self._lock:
            return IngestStats(
                **{k: self._n[k] for k in _COUNTS},
                dead_lettered=dict(self._dead),
                dead_lettered_by_gateway={g: dict(c) for g, c in self._dead_by_gateway.items()},
                connected=self.connected,
                last_message_at=self.last_message_at,
            )


_COUNTS = (
    "received",
    "records_received",
    "stored",
    "duplicates",
    "records_refused",
    "status_messages",
    "snapshots",
    "store_errors",
    "callback_errors",
    "store_give_ups",
    "dead_letter_store_errors",
    "epochs_seen",
    "connects",
    "disconnects",
)


def combine_stats(parts: list[IngestStats], *, restarts: int = 0) -> IngestStats:
    """The counters of several workers (processes) as one: sums, merged per-reason counts.

    `connected` only if every worker is; `workers` counts the parts.
    """
    dead: collections.Counter[str] = collections.Counter()
    by_gateway: dict[str, collections.Counter[str]] = {}
    for part in parts:
        dead.update(part.dead_lettered)
        for gw, counts in part.dead_lettered_by_gateway.items():
            by_gateway.setdefault(gw, collections.Counter()).update(counts)
    times = [p.last_message_at for p in parts if p.last_message_at is not None]
    return IngestStats(
        **{k: sum(getattr(p, k) for p in parts) for k in _COUNTS},
        dead_lettered=dict(dead),
        dead_lettered_by_gateway={g: dict(c) for g, c in by_gateway.items()},
        connected=bool(parts) and all(p.connected for p in parts),
        last_message_at=max(times, default=None),
        workers=len(parts),
        worker_restarts=restarts,
    )
