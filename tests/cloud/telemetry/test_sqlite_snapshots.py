"""The embedded store moves snapshots of a file written before they had ids."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from cloud.telemetry import SqliteTelemetryStore
from ironwatch.wire import WaveformSnapshot

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_snapshots_of_an_older_file_are_kept_and_keyed_like_a_resend(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    old = WaveformSnapshot(
        gateway_id="gw-1", seq=7, sent_at=T0, asset_id="pump-01", point="de",
        ts=T0 + timedelta(seconds=3), sample_rate_hz=1000.0,
        samples_f32le_b64=WaveformSnapshot.pack(np.arange(4)),
    )
    with sqlite3.connect(path) as conn:  # the layout before snapshot ids
        conn.execute(
            "CREATE TABLE snapshots (gateway_id TEXT NOT NULL, seq INTEGER NOT NULL,"
            " asset_id TEXT NOT NULL, point TEXT NOT NULL, ts_ns INTEGER NOT NULL,"
            " body TEXT NOT NULL, PRIMARY KEY (gateway_id, seq))"
        )
        conn.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?)",
                     ("gw-1", 7, "pump-01", "de", 1_772_323_203_000_000_000,
                      old.model_dump_json()))
    conn.close()
    store = SqliteTelemetryStore(path)
    try:
        kept = store.latest_snapshot("pump-01")
        assert kept is not None and kept.ts == old.ts
        assert store.save_snapshot(old) is False  # the same window: already stored
        tables = {r[0] for r in store._conn().execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "snapshots" not in tables
    finally:
        store.close()
    # Opening it again finds nothing left to move.
    SqliteTelemetryStore(path).close()
