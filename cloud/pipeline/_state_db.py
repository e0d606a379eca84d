"""The pipeline's state in the database: loaded per asset, written per round for what changed.

One row per (asset, point) in `scoring_points` (cursor, commissioning, persistence,
the protection rules' last readings), one per asset in `scoring_assets` (open failure
modes, verdict rows, lease) and one per asset that asked for a waveform in
`scoring_snapshot_requests` (the request and a new alert's wait for it). A round writes
the rows of the points it read, the requests it made or whose wait ended, and a
point's commissioning matrix only while it commissions, so what a round writes grows
with the rows it read, not with the fleet. Feature histories for RUL are not written:
they are the telemetry the store already keeps, read back for a point when it needs them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import Connection, Insert, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud.db.models import ScoringAsset, ScoringMeta, ScoringPoint, ScoringSnapshotRequest
from cloud.pipeline._protection import PointReadings
from cloud.pipeline._state import KeyState, PipelineState, SnapshotRequest, split_key

__all__ = ["SavedBytes", "StateStore"]

log = logging.getLogger(__name__)

_CHUNK = 900  # ids per IN (...): well below SQLite's bound-parameter limit
_POINT_COLUMNS = (
    "asset_id", "cursor_s", "commissioned_at_s", "raised", "onset_s", "flags_tail",
    "trend_from_s", "baseline_first_s", "baseline_last_s", "protect_velocity_mms",
    "protect_temperature_c",
)
#: The protection rules' readings of each asset's points, as `ProtectionRules` keeps them.
Readings = Mapping[str, Mapping[str, PointReadings]]


@dataclass
class SavedBytes:
    """Roughly what one save wrote: rows and payload bytes (for the round report)."""

    rows: int = 0
    bytes: int = 0


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], key: str) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE, batched, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    dialect = conn.dialect.name
    stmt: Insert
    if dialect == "postgresql":
        pg = postgresql.insert(table)
        stmt = pg.on_conflict_do_update(
            index_elements=[key], set_={c: pg.excluded[c] for c in rows[0] if c != key}
        )
    elif dialect == "sqlite":
        lite = sqlite.insert(table)
        stmt = lite.on_conflict_do_update(
            index_elements=[key], set_={c: lite.excluded[c] for c in rows[0] if c != key}
        )
    else:  # pragma: no cover - the two engines Ironwatch runs on
        raise NotImplementedError(f"no upsert for {dialect}")
    conn.execute(stmt, rows)


def _point_row(key: str, ks: KeyState, readings: PointReadings | None) -> dict[str, Any]:
    return {
        "key": key,
        "asset_id": split_key(key)[0],
        "cursor_s": ks.cursor_s,
        "commissioned_at_s": ks.commissioned_at_s,
        "raised": ks.raised,
        "onset_s": ks.onset_s,
        "flags_tail": [bool(f) for f in ks.flags_tail],
        "trend_from_s": ks.trend_from_s,
        "baseline_first_s": ks.baseline_first_s,
        "baseline_last_s": ks.baseline_last_s,
        "protect_velocity_mms": [] if readings is None else list(readings.velocity_mms),
        "protect_temperature_c": [] if readings is None else list(readings.temperature_c),
    }


class StateStore:
    """Loads and saves `PipelineState` rows; the session (and its transaction) is the caller's."""

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self.session_factory = session_factory
        #: Saved `trend_from_s` of loaded points, for reading their histories back.
        self._trend_from: dict[str, float | None] = {}
        #: Highest verdict id each asset has taken.
        self._verdict_seen: dict[str, int] = {}
        #: Loaded points part-way through commissioning: (first, last) capture time of the
        #: rows their baseline holds so far, to be read back from the telemetry store.
        self.commissioning_reads: dict[str, tuple[float, float]] = {}

    # -- loading -------------------------------------------------------------------------
    def is_empty(self) -> bool:
        with self.session_factory() as session:
            return session.scalar(select(ScoringPoint.key).limit(1)) is None

    def load_into(
        self,
        state: PipelineState,
        asset_ids: set[str] | None = None,
        *,
        readings: dict[str, dict[str, PointReadings]] | None = None,
    ) -> list[str]:
        """Add the saved state of `asset_ids` (None: every asset) to `state`; returns its keys.

        Histories stay empty and the points cold (`KeyState.warm` False). Points still
        commissioning come without their rows: `commissioning_reads` lists them, for the
        caller to read back from the telemetry store. The protection rules' saved readings
        go to `readings` (replacing what it held for those points).
        """
        with self.session_factory() as session:
            state.baseline.version = max(state.baseline.version, self._version(session))
            points: list[ScoringPoint] = []
            assets: list[ScoringAsset] = []
            requests: list[ScoringSnapshotRequest] = []
            if asset_ids is None:
                points = list(session.scalars(select(ScoringPoint)))
                assets = list(session.scalars(select(ScoringAsset)))
                requests = list(session.scalars(select(ScoringSnapshotRequest)))
            else:
                for ids in _chunks(sorted(asset_ids)):
                    points += session.scalars(
                        select(ScoringPoint).where(ScoringPoint.asset_id.in_(ids)))
                    assets += session.scalars(
                        select(ScoringAsset).where(ScoringAsset.asset_id.in_(ids)))
                    requests += session.scalars(
                        select(ScoringSnapshotRequest)
                        .where(ScoringSnapshotRequest.asset_id.in_(ids)))
            keys: list[str] = []
            for p in points:
                state.keys[p.key] = KeyState(
                    cursor_s=p.cursor_s,
                    commissioned_at_s=p.commissioned_at_s,
                    flags_tail=[bool(f) for f in p.flags_tail],
                    raised=bool(p.raised),
                    onset_s=p.onset_s,
                    baseline_first_s=p.baseline_first_s,
                    baseline_last_s=p.baseline_last_s,
                    warm=False,
                )
                self._trend_from[p.key] = p.trend_from_s
                if readings is not None:
                    asset_id, point = split_key(p.key)
                    readings.setdefault(asset_id, {})[point] = PointReadings(
                        point,
                        [float(v) for v in p.protect_velocity_mms or []],
                        [float(v) for v in p.protect_temperature_c or []],
                    )
                if p.baseline_rows:
                    names = [str(n) for n in p.baseline_names]
                    rows = np.frombuffer(p.baseline_rows, dtype="<f8").reshape(-1, len(names))
                    state.baseline.set_rows(p.key, names, rows.astype(np.float64))
                elif p.baseline_first_s is not None and p.baseline_last_s is not None:
                    self.commissioning_reads[p.key] = (p.baseline_first_s, p.baseline_last_s)
                keys.append(p.key)
            for a in assets:
                if a.open_modes:
                    state.open_modes[a.asset_id] = [str(m) for m in a.open_modes]
                state.verdict_rows.extend(dict(v) for v in a.verdict_rows)
                self._verdict_seen[a.asset_id] = int(a.last_verdict_id)
            for r in requests:
                state.snapshot_requests[r.asset_id] = SnapshotRequest(
                    point=r.point, asked_at_s=r.asked_at_s, command_id=r.command_id,
                    waiting_since_s=r.waiting_since_s,
                )
        return keys

    def trend_from(self, key: str) -> float | None:
        return self._trend_from.get(key)

    def verdict_seen(self, asset_id: str) -> int:
        return self._verdict_seen.get(asset_id, 0)

    def note_verdict(self, asset_id: str, verdict_id: int) -> None:
        self._verdict_seen[asset_id] = max(self._verdict_seen.get(asset_id, 0), verdict_id)

    def forget(self, asset_ids: set[str]) -> None:
        for asset_id in asset_ids:
            self._verdict_seen.pop(asset_id, None)
        for key in [k for k in self._trend_from if split_key(k)[0] in asset_ids]:
            del self._trend_from[key]

    # -- saving ----------------------------------------------------------------------------
    def save(
        self,
        session: Session,
        state: PipelineState,
        allowed: Callable[[str], bool],
        readings: Readings | None = None,
    ) -> SavedBytes:
        """Write the dirty keys, assets and snapshot requests of `state` whose asset
        passes `allowed`, with the protection rules' `readings` of those keys."""
        conn = session.connection()
        out = SavedBytes()
        keys = sorted(k for k in state.dirty_keys if k in state.keys and allowed(split_key(k)[0]))
        empty: Mapping[str, PointReadings] = {}
        rows = []
        for k in keys:
            asset_id, point = split_key(k)
            of_asset = empty if readings is None else readings.get(asset_id, empty)
            rows.append(_point_row(k, state.keys[k], of_asset.get(point)))
        _upsert(conn, ScoringPoint.__table__, rows, "key")
        out.rows += len(rows)
        # cursor, commissioning, flags, times and readings: about 8 bytes a number, plus the key
        out.bytes += sum(
            len(r["key"]) + 8 * (8 + len(r["flags_tail"]) + len(r["protect_velocity_mms"])
                                 + len(r["protect_temperature_c"]))
            for r in rows
        )
        requests: list[dict[str, Any]] = [
            {"asset_id": a, "point": r.point, "command_id": r.command_id,
             "asked_at_s": r.asked_at_s, "waiting_since_s": r.waiting_since_s}
            for a in sorted(state.dirty_requests)
            if (r := state.snapshot_requests.get(a)) is not None and allowed(a)
        ]
        _upsert(conn, ScoringSnapshotRequest.__table__, requests, "asset_id")
        out.rows += len(requests)
        out.bytes += sum(len(r["asset_id"]) + len(r["point"]) + 40 for r in requests)
        # A baseline is written once, when its point completes commissioning; until then
        # its rows are read back from the telemetry store after a restart (`baseline_*_s`).
        blobs = []
        for k in sorted(state.dirty_baselines):
            ks = state.keys.get(k)
            arr = state.baseline.rows.get(k)
            if ks is None or arr is None or ks.commissioned_at_s is None or not allowed(
                split_key(k)[0]
            ):
                continue
            blob = np.ascontiguousarray(arr, dtype="<f8").tobytes()
            blobs.append({"b_key": k, "b_names": list(state.baseline.feature_names),
                          "b_rows": blob})
            out.bytes += len(blob)
        if blobs:
            table = cast(Table, ScoringPoint.__table__)
            conn.execute(
                update(table).where(table.c.key == bindparam("b_key")).values(
                    baseline_names=bindparam("b_names"), baseline_rows=bindparam("b_rows")
                ),
                blobs,
            )
        assets = sorted(a for a in state.dirty_assets if allowed(a))
        if assets:
            verdicts: dict[str, list[dict[str, Any]]] = {a: [] for a in assets}
            for v in state.verdict_rows:
                asset_id = split_key(str(v["key"]))[0]
                if asset_id in verdicts:
                    verdicts[asset_id].append(v)
            asset_rows = [
                {"asset_id": a, "open_modes": list(state.open_modes.get(a, [])),
                 "verdict_rows": verdicts[a], "last_verdict_id": self.verdict_seen(a)}
                for a in assets
            ]
            _upsert(conn, ScoringAsset.__table__, asset_rows, "asset_id")
            out.rows += len(asset_rows)
            out.bytes += sum(
                len(str(r["open_modes"])) + len(str(r["verdict_rows"])) for r in asset_rows
            )
        return out

    def bump_version(self) -> int:
        """The next fleet baseline version, counted in the database (workers share it)."""
        with self.session_factory() as session:
            meta = session.get(ScoringMeta, 1, with_for_update=True)
            if meta is None:
                meta = ScoringMeta(id=1, baseline_version=0)
                session.add(meta)
            meta.baseline_version += 1
            version = meta.baseline_version
            session.commit()
        return version

    @staticmethod
    def _version(session: Session) -> int:
        meta = session.get(ScoringMeta, 1)
        return 0 if meta is None else int(meta.baseline_version)

    # -- upgrade from the file format ------------------------------------------------------
    def import_directory(self, directory: Path) -> bool:
        """Import a `state.json` of an earlier version once; True if one was imported.

        Histories are not imported (the telemetry store has them); the file is renamed to
        `state.json.imported` so the next start does not import it again.
        """
        path = directory / "state.json"
        if not path.exists() or not self.is_empty():
            return False
        old = PipelineState.load(directory)
        old.dirty_keys = set(old.keys)
        old.dirty_baselines = set(old.baseline.rows)
        old.dirty_assets = {split_key(k)[0] for k in old.keys} | set(old.open_modes)
        last = max(old.verdicts_applied, default=0)
        for asset_id in old.dirty_assets:
            self.note_verdict(asset_id, last)
        with self.session_factory() as session:
            self.save(session, old, lambda _a: True)
            old.clean()
            meta = session.get(ScoringMeta, 1)
            if meta is None:
                session.add(ScoringMeta(id=1, baseline_version=old.baseline.version))
            else:
                meta.baseline_version = max(meta.baseline_version, old.baseline.version)
            session.commit()
        os.replace(path, directory / "state.json.imported")
        log.info("imported %d points of scoring state from %s", len(old.keys), path)
        return True
