"""Dead letters: messages (or single records) the cloud refused, kept with topic, bounded
payload, reason and time.

A refused message is never retried automatically; it is kept so an operator can see why
a gateway's data is missing (wrong id, unknown asset, schema drift) and replay it later.
Every store here is bounded: the newest N letters are kept, older ones dropped and counted.
The cloud service keeps them in its database (`cloud.domain.deadletters.DbDeadLetterStore`).
"""

from __future__ import annotations

import collections
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from cloud.ingest._errors import IngestError

__all__ = ["DeadLetter", "DeadLetterStore", "MemoryDeadLetterStore", "SqliteDeadLetterStore"]


@dataclass(frozen=True)
class DeadLetter:
    """One refused message. `payload` may be truncated; `payload_size` is the original size."""

    received_at: datetime
    topic: str
    reason_code: str
    reason: str
    payload: bytes
    payload_size: int
    gateway_id: str | None = None
    epoch: str | None = None
    seq: int | None = None

    @classmethod
    def make(
        cls, topic: str, payload: bytes, reason_code: str, reason: str, *, max_payload_bytes: int,
        gateway_id: str | None = None, epoch: str | None = None, seq: int | None = None,
        payload_size: int | None = None,
    ) -> DeadLetter:
        """A letter with the payload cut to max_payload_bytes (payload_size: the original)."""
        return cls(
            received_at=datetime.now(UTC),
            topic=topic[:1024],
            reason_code=reason_code,
            reason=reason[:2048],
            payload=bytes(payload[:max_payload_bytes]),
            payload_size=len(payload) if payload_size is None else payload_size,
            gateway_id=None if gateway_id is None else gateway_id[:64],
            epoch=None if epoch is None else epoch[:32],
            seq=seq,
        )


@runtime_checkable
class DeadLetterStore(Protocol):
    def put(self, letter: DeadLetter) -> None: ...

    def put_many(self, letters: Sequence[DeadLetter]) -> None:
        """Keep several letters at once (one transaction where the store has them)."""
        ...

    def recent(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first."""
        ...

    def count(self, reason_code: str | None = None) -> int: ...


class MemoryDeadLetterStore:
    """The newest `max_items` dead letters in memory; older ones fall off (counts stay exact)."""

    def __init__(self, max_items: int = 10_000) -> None:
        self._items: collections.deque[DeadLetter] = collections.deque(maxlen=max_items)
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def put(self, letter: DeadLetter) -> None:
        with self._lock:
            self._items.append(letter)
            self._counts[letter.reason_code] += 1

    def put_many(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            self.put(letter)

    def recent(self, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            return list(reversed(self._items))[:limit]

    def count(self, reason_code: str | None = None) -> int:
        with self._lock:
            return self._counts.total() if reason_code is None else self._counts[reason_code]


class SqliteDeadLetterStore:
    """Dead letters in a SQLite table (survive restarts); keeps the newest `max_items`."""

    def __init__(self, path: str | Path, *, max_items: int = 100_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._max_items = max_items
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY, "
                "received_at TEXT NOT NULL, topic TEXT NOT NULL, reason_code TEXT NOT NULL, "
                "reason TEXT NOT NULL, payload BLOB NOT NULL, payload_size INTEGER NOT NULL)"
            )
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(dead_letters)")}
            for name, kind in (("gateway_id", "TEXT"), ("epoch", "TEXT"), ("seq", "INTEGER")):
                if name not in columns:  # a file from before these columns
                    self._conn.execute(f"ALTER TABLE dead_letters ADD COLUMN {name} {kind}")
            self._conn.commit()
        except sqlite3.Error as err:
            raise IngestError(f"cannot open dead-letter store {self.path}: {err}") from err

    def put(self, letter: DeadLetter) -> None:
        with self._lock, self._conn:
            cur = self._conn.execute(
                "INSERT INTO dead_letters (received_at, topic, reason_code, reason, payload, "
                "payload_size, gateway_id, epoch, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (letter.received_at.isoformat(), letter.topic, letter.reason_code, letter.reason,
                 letter.payload, letter.payload_size, letter.gateway_id, letter.epoch,
                 letter.seq),
            )
            # Bounded: a gateway stuck sending garbage must not fill the disk.
            if cur.lastrowid is not None and cur.lastrowid % 1000 == 0:
                self._conn.execute(
                    "DELETE FROM dead_letters WHERE id <= ?", (cur.lastrowid - self._max_items,)
                )

    def put_many(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            self.put(letter)

    def recent(self, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT received_at, topic, reason_code, reason, payload, payload_size, "
                "gateway_id, epoch, seq FROM dead_letters ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_row(r) for r in rows]

    def count(self, reason_code: str | None = None) -> int:
        with self._lock:
            if reason_code is None:
                row = self._conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
            else:
                row = self._conn.execute(
                    "SELECT COUNT(*) FROM dead_letters WHERE reason_code = ?", (reason_code,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _row(r: Sequence[object]) -> DeadLetter:
    return DeadLetter(
        received_at=datetime.fromisoformat(str(r[0])),
        topic=str(r[1]),
        reason_code=str(r[2]),
        reason=str(r[3]),
        payload=bytes(r[4]),  # type: ignore[call-overload]
        payload_size=int(r[5]),  # type: ignore[call-overload]
        gateway_id=None if r[6] is None else str(r[6]),
        epoch=None if r[7] is None else str(r[7]),
        seq=None if r[8] is None else int(r[8]),  # type: ignore[call-overload]
    )
