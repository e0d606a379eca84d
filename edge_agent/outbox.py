"""The durable outbox: feature records wait here, in SQLite, until the cloud has stored them.

SQLite in WAL mode survives kill -9 and power loss at any moment: a transaction is either
in the file or not. `synchronous=FULL` (the default) fsyncs the WAL at every commit, so a
record `append` returned is on disk even after a power cut; `normal` is allowed for slow SD
cards and only risks the last commits before a power cut (never corruption, never a kill -9).

The outbox has an epoch, made with the file: a new outbox (reinstall, SD-card swap) starts
its sequence numbers again under a new epoch, and the cloud deduplicates on (gateway,
epoch, seq).

A record leaves the outbox through `ack`, which the publisher calls when the cloud's
`StoredAck` names it (end-to-end acknowledgement), not when the broker took it: a broker
that dies before it saved its queue cannot lose a record the gateway still holds.

Sequence numbers come from an AUTOINCREMENT key: SQLite never hands out a number again,
even after the rows were deleted, and the counter commits with the row, so a number that
reached the broker is never reused after a crash or restart.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from edge_agent._errors import OutboxError
from ironwatch.wire import new_epoch

__all__ = ["OutboxQueue", "OutboxStats", "PendingRecord", "StoredRecord"]

_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A feature record before it has a sequence number (the outbox assigns it)."""

    asset_id: str
    point: str
    ts: datetime
    window_s: float
    features: dict[str, float | None]
    stale: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "asset_id": self.asset_id,
                "point": self.point,
                "ts": self.ts.isoformat(),
                "window_s": self.window_s,
                "features": self.features,
                "stale": self.stale,
            },
            separators=(",", ":"),
            allow_nan=False,
        )


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record in the outbox: its sequence number and the JSON body without the seq."""

    seq: int
    body: str

    def fields(self) -> dict[str, Any]:
        """The FeatureRecord fields, seq included."""
        data: dict[str, Any] = json.loads(self.body)
        data["seq"] = self.seq
        return data


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters for the status message; `dropped` persists across restarts."""

    queued: int
    last_seq: int
    appended: int
    acked: int
    dropped: int
    dropped_sent: int = 0
    """Records deleted for room after they had been handed to the broker (the cloud may have
    them); `dropped` counts only records that never left, so it is an exact loss count."""


class OutboxQueue:
    """A bounded FIFO of records on disk; records leave it only through `ack`.

    Thread-safe: the acquisition side appends, the publisher acks. When more than
    `max_records` are queued, the oldest records not yet handed to the broker are deleted
    (policy `drop_oldest`: recent data matters more for a machine's condition) and counted
    in `dropped`. Records already sent (`mark_sent`) go last: they are on their way and
    most likely stored; if they must go too they are counted apart, in `dropped_sent`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_records: int = 1_000_000,
        synchronous: Literal["full", "normal"] = "full",
    ) -> None:
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        self.path = Path(path)
        self.max_records = max_records
        self._lock = threading.Lock()
        self._appended = 0
        self._acked = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per call.
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(f"{self.path}: WAL mode unavailable (got {mode}); use local disk")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.executescript(_SCHEMA)
            self._queued = int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])
            self._check()
            self.epoch = self._epoch()
            row = self._db.execute("SELECT value FROM meta WHERE name = 'sent_through'").fetchone()
            self._sent_through = int(row[0]) if row else 0
        except (sqlite3.Error, OSError) as err:
            raise OutboxError(f"cannot open outbox {self.path}: {err}") from err

    def _epoch(self) -> str:
        """This outbox's epoch, made once when the file is created and kept with it."""
        self._db.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('epoch', ?)", (new_epoch(),)
        )
        return str(self._db.execute("SELECT value FROM meta WHERE name = 'epoch'").fetchone()[0])

    def _check(self) -> None:
        result = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise OutboxError(f"outbox {self.path} is damaged: {result}")

    def append(self, records: Iterable[PendingRecord]) -> list[int]:
        """Store records durably and return their new sequence numbers, in order."""
        bodies = [r.to_json() for r in records]
        if not bodies:
            return []
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seqs = []
                for body in bodies:
                    cur = self._db.execute("INSERT INTO records (body) VALUES (?)", (body,))
                    seqs.append(int(cur.lastrowid or 0))
                self._queued += len(bodies)
                over = self._queued - self.max_records
                unsent, sent = self._drop(over) if over > 0 else (0, 0)
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                self._queued = int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])
                raise OutboxError(f"cannot append to outbox {self.path}: {err}") from err
            if over > 0:
                _log.warning("outbox full (%d records): dropped the %d oldest unsent records"
                             " and %d sent but not yet stored", self.max_records, unsent, sent)
            self._appended += len(bodies)
            return seqs

    def _drop(self, over: int) -> tuple[int, int]:
        """Delete `over` records for room: unsent ones first, oldest first (in a transaction)."""
        # Count what was deleted, not what was asked: the exact number of lost records.
        unsent = self._db.execute(
            "DELETE FROM records WHERE seq IN "
            "(SELECT seq FROM records WHERE seq > ? ORDER BY seq LIMIT ?)",
            (self._sent_through, over),
        ).rowcount
        if unsent:
            self._bump("dropped", unsent)
        sent = 0
        if unsent < over:
            sent = self._db.execute(
                "DELETE FROM records WHERE seq IN (SELECT seq FROM records ORDER BY seq LIMIT ?)",
                (over - unsent,),
            ).rowcount
            if sent:
                self._bump("dropped_sent", sent)
        self._queued -= unsent + sent
        return unsent, sent

    def mark_sent(self, through_seq: int) -> None:
        """Note that every record up to through_seq was handed to the broker (kept on disk)."""
        with self._lock:
            if through_seq <= self._sent_through:
                return
            try:
                self._db.execute(
                    "INSERT INTO meta (name, value) VALUES ('sent_through', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (str(through_seq),),
                )
            except sqlite3.Error as err:
                raise OutboxError(f"cannot note sent records in {self.path}: {err}") from err
            self._sent_through = through_seq

    def get(self, seqs: Sequence[int]) -> list[StoredRecord]:
        """The records among seqs still in the outbox, in seq order."""
        found: list[StoredRecord] = []
        with self._lock:
            for i in range(0, len(seqs), 500):
                chunk = list(seqs[i : i + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT seq, body FROM records WHERE seq IN ({marks})", chunk
                ).fetchall()
                found += [StoredRecord(int(seq), str(body)) for seq, body in rows]
        return sorted(found, key=lambda r: r.seq)

    def peek(self, after_seq: int = -1, limit: int = 500) -> list[StoredRecord]:
        """Up to `limit` queued records with seq > after_seq, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [StoredRecord(int(seq), str(body)) for seq, body in rows]

    def ack(self, seqs: Sequence[int]) -> int:
        """Delete acknowledged records; returns how many were still there (some may be dropped)."""
        if not seqs:
            return 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                deleted = 0
                # Batches are contiguous runs of seqs; chunks keep the SQL variable count low.
                for i in range(0, len(seqs), 500):
                    chunk = list(seqs[i : i + 500])
                    marks = ",".join("?" * len(chunk))
                    cur = self._db.execute(f"DELETE FROM records WHERE seq IN ({marks})", chunk)
                    deleted += cur.rowcount
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                raise OutboxError(f"cannot delete acknowledged records: {err}") from err
            self._queued -= deleted
            self._acked += deleted
            return deleted

    def ack_ranges(self, ranges: Sequence[tuple[int, int]]) -> int:
        """Delete the records in inclusive (first, last) seq ranges; returns how many were there."""
        if not ranges:
            return 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                deleted = 0
                for first, last in ranges:
                    cur = self._db.execute(
                        "DELETE FROM records WHERE seq BETWEEN ? AND ?", (first, last)
                    )
                    deleted += cur.rowcount
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                raise OutboxError(f"cannot delete stored records: {err}") from err
            self._queued -= deleted
            self._acked += deleted
            return deleted

    @property
    def last_seq(self) -> int:
        """The last sequence number ever assigned (-1 if none), acknowledged or not."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'records'"
            ).fetchone()
        return int(row[0]) if row else -1

    def __len__(self) -> int:
        with self._lock:
            return self._queued

    def stats(self) -> OutboxStats:
        with self._lock:
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            queued, appended, acked = self._queued, self._appended, self._acked
        return OutboxStats(queued, self.last_seq, appended, acked,
                           int(counters.get("dropped", 0)), int(counters.get("dropped_sent", 0)))

    def close(self) -> None:
        with self._lock:
            try:
                # Fold the WAL back into the main file so a copied outbox is self-contained.
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as err:
                _log.debug("checkpoint on close failed: %s", err)
            self._db.close()

    def __enter__(self) -> OutboxQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error as err:
            _log.debug("rollback: %s", err)
