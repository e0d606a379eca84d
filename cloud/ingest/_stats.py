"""Counters of an ingestion worker, read as an immutable snapshot."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["IngestStats", "StatsCounter"]


@dataclass(frozen=True)
class IngestStats:
    """What a worker has done since it was created (counts survive stop/start, not restarts).

    `received` counts MQTT messages, `stored`/`duplicates` count records; `dead_lettered`
    counts messages by reason code.
    """

    received: int = 0
    records_received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    records_refused: int = 0
    status_messages: int = 0
    snapshots: int = 0
    store_errors: int = 0
    callback_errors: int = 0
    connects: int = 0
    disconnects: int = 0
    connected: bool = False
    last_message_at: datetime | None = None

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
        self.connected = False
        self.last_message_at: datetime | None = None

    def add(self, **counts: int) -> None:
        with self._lock:
            self._n.update(counts)

    def dead_letter(self, reason_code: str) -> None:
        with self._lock:
            self._dead[reason_code] += 1

    def snapshot(self) -> IngestStats:
        with self._lock:
            return IngestStats(
                **{k: self._n[k] for k in _COUNTS},
                dead_lettered=dict(self._dead),
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
    "connects",
    "disconnects",
)
