"""The embedded telemetry store: one SQLite file in WAL mode, nothing to install or run.

A record is one row keyed by (gateway_id, epoch, seq); its features are a float64 blob plus the
id of its (sorted) feature-name set, so a query decodes thousands of rows with one
numpy call per name set instead of parsing JSON row by row.
"""

from __future__ import annotations

import math
import sqlite3
import struct
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from cloud.telemetry._errors import RecordRejectedError, StoreUnavailableError, TelemetryError
from cloud.telemetry._frame import FeatureFrame, TimeLike, datetime_to_ns, to_ns
from cloud.telemetry._query_args import check_asset_ids, check_limit
from cloud.telemetry._snapshots import load_snapshot
from cloud.telemetry._store import (
    RecordGroup,
    RecordWriter,
    StorableRecord,
    StoredRow,
    WriteResult,
    sort_out,
)
from ironwatch.wire import WaveformSnapshot

__all__ = ["SqliteTelemetryStore"]

_RECORDS_TABLE = """
CREATE TABLE IF NOT EXISTS records (
    gateway_id TEXT NOT NULL,
    epoch TEXT NOT NULL DEFAULT '',
    seq INTEGER NOT NULL,
    asset_id TEXT NOT NULL,
    point TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    window_s REAL NOT NULL,
    stale INTEGER NOT NULL,
    feature_set INTEGER NOT NULL REFERENCES feature_sets(id),
    vals BLOB NOT NULL,
    PRIMARY KEY (gateway_id, epoch, seq)
);
"""
_RECORDS_INDEXES = """
CREATE INDEX IF NOT EXISTS records_asset_time ON records (asset_id, point, ts_ns);
CREATE INDEX IF NOT EXISTS records_time ON records (ts_ns);
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_sets (
    id INTEGER PRIMARY KEY,
    names TEXT NOT NULL UNIQUE
);
""" + _RECORDS_TABLE + _RECORDS_INDEXES + """
CREATE TABLE IF NOT EXISTS waveform_snapshots (
    gateway_id TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    point TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (gateway_id, asset_id, snapshot_id)
);
CREATE INDEX IF NOT EXISTS waveform_snapshots_asset_time
    ON waveform_snapshots (asset_id, point, ts_ns);
"""
# Files written before outbox epochs keyed records on (gateway_id, seq) alone; their rows
# move to the legacy epoch '' (see _migrate).
_MIGRATE_TO_EPOCHS = """
ALTER TABLE records RENAME TO records_before_epochs;
""" + _RECORDS_TABLE + """
INSERT INTO records (gateway_id, epoch, seq, asset_id, point, ts_ns, window_s, stale,
                     feature_set, vals)
    SELECT gateway_id, '', seq, asset_id, point, ts_ns, window_s, stale, feature_set, vals
    FROM records_before_epochs;
DROP TABLE records_before_epochs;
""" + _RECORDS_INDEXES
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INSERT = (
    "INSERT OR IGNORE INTO records (gateway_id, epoch, seq, asset_id, point, ts_ns, window_s, "
    "stale, feature_set, vals) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_LOOKUP_CHUNK = 500  # seqs per "IN (...)": below every SQLite build's variable limit
_NAN = float("nan")
_SEP = "\x1f"  # names are lower_snake_case, so a control character cannot clash


class SqliteTelemetryStore(RecordWriter):
    """TelemetryStore in a single SQLite file (WAL): one writer at a time, readers alongside.

    Each thread gets its own connection; writes are serialised by a lock inside the
    process and by SQLite's busy timeout across processes.
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._set_ids: dict[tuple[str, ...], int] = {}
        self._set_names: dict[int, tuple[str, ...]] = {}
        # Feature names in a record's order -> (sorted names, feature-set id, blob packer).
        self._layouts: dict[tuple[str, ...], tuple[tuple[str, ...], int, Callable[..., bytes]]] = {}
        conn = self._conn()
        try:
            _migrate(conn)
            conn.executescript(_SCHEMA)
            self._migrate_snapshots(conn)
        except sqlite3.Error as err:
            raise StoreUnavailableError(f"cannot initialise {self.path}: {err}") from err

    @staticmethod
    def _migrate_snapshots(conn: sqlite3.Connection) -> None:
        """Move snapshots of a file written before they had ids, keyed as a resend would be.

        That table was keyed on (gateway, seq), which lost a second asset's snapshot.
        """
        old = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'snapshots'"
        ).fetchone()
        if old is None:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for rowid, point, ts_ns in conn.execute(
                "SELECT rowid, point, ts_ns FROM snapshots"
            ).fetchall():
                key = WaveformSnapshot.window_id(
                    point, _EPOCH + timedelta(microseconds=int(ts_ns) // 1000)
                )
                conn.execute(
                    "INSERT OR IGNORE INTO waveform_snapshots (gateway_id, asset_id, snapshot_id,"
                    " seq, point, ts_ns, body) SELECT gateway_id, asset_id, ?, seq, point, ts_ns,"
                    " body FROM snapshots WHERE rowid = ?",
                    (key, rowid),
                )
            conn.execute("DROP TABLE snapshots")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise TelemetryError("store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self._busy_timeout_s,
                    isolation_level=None,  # explicit BEGIN/COMMIT below
                    check_same_thread=False,  # close() runs on another thread
                )
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts;
                # QoS 1 redelivery covers what was not yet acknowledged.
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as err:
                raise StoreUnavailableError(f"cannot open {self.path}: {err}") from err
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _feature_set(self, conn: sqlite3.Connection, names: tuple[str, ...]) -> int:
        """The id of a feature-name set, made if new. Called outside any transaction, so a
        new set is committed at once and the cache never holds an id a rollback undid."""
        set_id = self._set_ids.get(names)
        if set_id is None:
            joined = _SEP.join(names)
            conn.execute("INSERT OR IGNORE INTO feature_sets (names) VALUES (?)", (joined,))
            row = conn.execute("SELECT id FROM feature_sets WHERE names = ?", (joined,)).fetchone()
            set_id = int(row[0])
            self._set_ids[names] = set_id
            self._set_names[set_id] = names
        return set_id

    def _names_of(self, conn: sqlite3.Connection, set_id: int) -> tuple[str, ...]:
        names = self._set_names.get(set_id)
        if names is None:
            row = conn.execute("SELECT names FROM feature_sets WHERE id = ?", (set_id,)).fetchone()
            names = tuple(row[0].split(_SEP)) if row and row[0] else ()
            self._set_names[set_id] = names
        return names

    def write_records(
        self, gateway_id: str, epoch: str, records: Sequence[StorableRecord]
    ) -> WriteResult:
        return self.write_batch([RecordGroup(gateway_id, epoch, records)])[0]

    def write_batch(self, groups: Sequence[RecordGroup]) -> list[WriteResult]:
        """Every group in one executemany and one COMMIT; a redelivery is sorted out.

        Rows are built before the transaction (a new feature-name set is committed on its
        own first), so the file's write lock is held only for the insert itself: several
        ingestion processes on one file wait for each other as little as possible.
        """
        if not any(g.records for g in groups):
            return [WriteResult() for _ in groups]
        conn = self._conn()
        with self._write_lock:
            try:
                rows = [row for g in groups
                        for row in self._rows(conn, g.gateway_id, g.epoch, g.records)]
                conn.execute("BEGIN IMMEDIATE")
                try:
                    results = self._insert(conn, groups, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError,
                    OverflowError, struct.error, ValueError, TypeError) as err:
                # The data itself: a value SQLite cannot hold. Retrying cannot help.
                raise RecordRejectedError(f"write to {self.path} refused: {err}") from err
            except sqlite3.Error as err:
                raise StoreUnavailableError(f"write to {self.path} failed: {err}") from err
        return results

    def _insert(
        self, conn: sqlite3.Connection, groups: Sequence[RecordGroup],
        rows: list[tuple[Any, ...]],
    ) -> list[WriteResult]:
        """Insert as if every record were new; if some were not, undo and sort them out.

        New records are the rule (a redelivery is rare), so the rule costs one statement
        and no lookup.
        """
        conn.execute("SAVEPOINT batch")
        before = conn.total_changes
        conn.executemany(_INSERT, rows)
        if conn.total_changes - before == len(rows):
            conn.execute("RELEASE batch")
            return [WriteResult(len(g.records)) for g in groups]
        conn.execute("ROLLBACK TO batch")
        results: list[WriteResult] = []
        rows = []
        for g in groups:
            existing = self._stored_rows(conn, g.gateway_id, g.epoch, g.records)
            to_write, result = sort_out(g.records, existing)
            rows.extend(self._rows(conn, g.gateway_id, g.epoch, to_write))
            results.append(result)
        conn.executemany(_INSERT, rows)
        conn.execute("RELEASE batch")
        return results

    def _rows(
        self, conn: sqlite3.Connection, gateway_id: str, epoch: str,
        records: Sequence[StorableRecord],
    ) -> list[tuple[Any, ...]]:
        """Table rows of records: features as a float64 blob in sorted-name order."""
        rows = []
        layouts = self._layouts
        for r in records:
            feats = r.features
            keys = tuple(feats)
            layout = layouts.get(keys)
            if layout is None:
                names = tuple(sorted(keys))
                layout = layouts[keys] = (names, self._feature_set(conn, names),
                                          struct.Struct(f"<{len(names)}d").pack)
            names, set_id, pack = layout
            blob = pack(*[_NAN if (v := feats[k]) is None else v for k in names])
            rows.append((gateway_id, epoch, r.seq, r.asset_id, r.point, datetime_to_ns(r.ts),
                         r.window_s, int(r.stale), set_id, blob))
        return rows

    def _stored_rows(
        self, conn: sqlite3.Connection, gateway_id: str, epoch: str,
        records: Sequence[StorableRecord],
    ) -> dict[int, StoredRow]:
        """The rows of these seqs already stored (usually none), as StoredRow by seq."""
        seqs = sorted({r.seq for r in records})
        found: dict[int, StoredRow] = {}
        for i in range(0, len(seqs), _LOOKUP_CHUNK):
            chunk = seqs[i:i + _LOOKUP_CHUNK]
            rows = conn.execute(
                "SELECT seq, asset_id, point, ts_ns, window_s, stale, feature_set, vals "
                "FROM records WHERE gateway_id = ? AND epoch = ? "
                f"AND seq IN ({', '.join('?' * len(chunk))})",
                [gateway_id, epoch, *chunk],
            ).fetchall()
            for seq, asset, point, ts_ns, window_s, stale, set_id, vals in rows:
                names = self._names_of(conn, int(set_id))
                values = struct.unpack(f"<{len(names)}d", vals)
                found[int(seq)] = StoredRow(
                    asset_id=asset, point=point, ts_ns=int(ts_ns), window_s=float(window_s),
                    stale=bool(stale),
                    features={n: v for n, v in zip(names, values, strict=True)
                              if not math.isnan(v)},
                )
        return found

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
        where, params = _where(asset_ids=asset_ids, point=point, start=start, end=end)
        sql = (
            "SELECT gateway_id, seq, asset_id, point, ts_ns, window_s, stale, feature_set, vals "
            f"FROM records{where} ORDER BY ts_ns, gateway_id, seq"
        )
        if limit is not None:
            check_limit(limit)
            sql += " LIMIT ?"
            params.append(limit)
        conn = self._conn()
        try:
            rows = conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise StoreUnavailableError(f"query on {self.path} failed: {err}") from err
        if not rows:
            return FeatureFrame.empty(features or ())
        gw, seq, asset, pt, ts, win, stale, sets, blobs = zip(*rows, strict=True)
        set_ids = np.asarray(sets, dtype=np.int64)
        unique_sets = np.unique(set_ids)
        names_by_set = {int(s): self._names_of(conn, int(s)) for s in unique_sets}
        names = (
            list(features)
            if features is not None
            else sorted({n for ns in names_by_set.values() for n in ns})
        )
        col = {name: j for j, name in enumerate(names)}
        values = np.full((len(rows), len(names)), np.nan)
        for s in unique_sets:
            set_names = names_by_set[int(s)]
            idx = np.flatnonzero(set_ids == s)
            # One frombuffer per feature-name set: every row of the set has the same layout.
            block = np.frombuffer(b"".join(blobs[i] for i in idx), dtype="<f8").reshape(
                len(idx), len(set_names)
            )
            src = np.asarray([k for k, n in enumerate(set_names) if n in col], dtype=np.intp)
            dst = np.asarray([col[set_names[k]] for k in src], dtype=np.intp)
            if len(src):
                values[np.ix_(idx, dst)] = block[:, src]
        if features is None:
            # A name whose every value is null is not "seen": the same answer InfluxDB gives.
            seen = ~np.isnan(values).all(axis=0)
            names = [n for n, keep in zip(names, seen, strict=True) if keep]
            values = values[:, seen]
        # Rows come back already ordered by SQL; keep that order.
        return FeatureFrame(
            gateway_ids=np.asarray(gw, dtype=str),
            seqs=np.asarray(seq, dtype=np.int64),
            asset_ids=np.asarray(asset, dtype=str),
            points=np.asarray(pt, dtype=str),
            ts_ns=np.asarray(ts, dtype=np.int64),
            window_s=np.asarray(win, dtype=np.float64),
            stale=np.asarray(stale, dtype=bool),
            values=values,
            feature_names=tuple(names),
        )

    def count(self, *, gateway_id: str | None = None, asset_id: str | None = None) -> int:
        clauses, params = [], []
        if gateway_id is not None:
            clauses.append("gateway_id = ?")
            params.append(gateway_id)
        if asset_id is not None:
            clauses.append("asset_id = ?")
            params.append(asset_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return int(self._one(f"SELECT COUNT(*) FROM records{where}", params))

    def duplicate_count(self) -> int:
        # The primary key makes this 0; it is computed, not assumed, so tests check the store.
        return int(
            self._one(
                "SELECT COUNT(*) - (SELECT COUNT(*) FROM "
                "(SELECT DISTINCT gateway_id, epoch, seq FROM records)) FROM records",
                [],
            )
        )

    def save_snapshot(self, snapshot: WaveformSnapshot) -> bool:
        """Keep it unless this (gateway, asset, snapshot id) is already stored (a resend)."""
        conn = self._conn()
        with self._write_lock:
            try:
                before = conn.total_changes
                conn.execute(
                    "INSERT OR IGNORE INTO waveform_snapshots (gateway_id, asset_id, snapshot_id,"
                    " seq, point, ts_ns, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (snapshot.gateway_id, snapshot.asset_id, snapshot.key, snapshot.seq,
                     snapshot.point, datetime_to_ns(snapshot.ts), snapshot.model_dump_json()),
                )
                return conn.total_changes > before
            except sqlite3.Error as err:
                raise StoreUnavailableError(f"snapshot write to {self.path} failed: {err}") from err

    def latest_snapshot(self, asset_id: str, point: str | None = None) -> WaveformSnapshot | None:
        sql = "SELECT body FROM waveform_snapshots WHERE asset_id = ?"
        params: list[Any] = [asset_id]
        if point is not None:
            sql += " AND point = ?"
            params.append(point)
        sql += " ORDER BY ts_ns DESC, seq DESC LIMIT 1"
        try:
            row = self._conn().execute(sql, params).fetchone()
        except sqlite3.Error as err:
            raise StoreUnavailableError(f"snapshot query on {self.path} failed: {err}") from err
        return None if row is None else load_snapshot(row[0], f"of {asset_id} in {self.path}")

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        try:
            return self._conn().execute(sql, list(params)).fetchone()[0]
        except sqlite3.Error as err:
            raise StoreUnavailableError(f"query on {self.path} failed: {err}") from err

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def __enter__(self) -> SqliteTelemetryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file of an older schema up to date (records keyed without the epoch)."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(records)")]
    if columns and "epoch" not in columns:
        conn.executescript("BEGIN IMMEDIATE;" + _MIGRATE_TO_EPOCHS + "COMMIT;")


def _where(
    *,
    asset_ids: Sequence[str] | None,
    point: str | None,
    start: TimeLike | None,
    end: TimeLike | None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if asset_ids is not None:
        check_asset_ids(asset_ids)
        if not asset_ids:
            clauses.append("0")
        else:
            clauses.append(f"asset_id IN ({', '.join('?' * len(asset_ids))})")
            params.extend(asset_ids)
    if point is not None:
        clauses.append("point = ?")
        params.append(point)
    if start is not None:
        clauses.append("ts_ns >= ?")
        params.append(to_ns(start))
    if end is not None:
        clauses.append("ts_ns < ?")
        params.append(to_ns(end))
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params
