"""SQLite-specific behaviour: durability across reopen, concurrent writers, frame helpers."""

from __future__ import annotations

import sqlite3
import struct
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cloud.telemetry import FeatureFrame, SqliteTelemetryStore, TelemetryError
from ironwatch.wire import FeatureRecord
from ironwatch_testing.ingest import make_records

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def rec(seq: int, n: int = 4) -> FeatureRecord:
    return FeatureRecord(seq=seq, asset_id=f"a{seq % 5}", point="de",
                         ts=T0 + timedelta(milliseconds=seq), window_s=1.0,
                         features={f"f{j}_ms2": float(seq + j) for j in range(n)})


def test_data_survives_reopen(tmp_path: Path) -> None:
    with SqliteTelemetryStore(tmp_path / "t.db") as s:
        s.write("gw", [rec(i) for i in range(5)])
    with SqliteTelemetryStore(tmp_path / "t.db") as s:
        assert s.count() == 5
        assert s.write("gw", [rec(i) for i in range(6)]) == 1
        assert s.query().column("f3_ms2").tolist() == [float(i + 3) for i in range(6)]


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    store = SqliteTelemetryStore(tmp_path / "t.db")
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for b in range(20):
                # overlapping ranges: every thread re-sends half of another's records
                store.write("gw", [rec(i) for i in range(k * 100 + b * 10, k * 100 + b * 10 + 15)])
                store.query(limit=50)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count() == len({i for k in range(4) for b in range(20)
                                 for i in range(k * 100 + b * 10, k * 100 + b * 10 + 15)})
    assert store.duplicate_count() == 0
    store.close()
    with pytest.raises(TelemetryError):
        store.count()


def test_mixed_feature_sets_line_up_by_name(tmp_path: Path) -> None:
    with SqliteTelemetryStore(tmp_path / "t.db") as s:
        s.write("gw", [rec(0, n=2), rec(1, n=4), rec(2, n=3)])
        f = s.query()
        assert f.feature_names == ("f0_ms2", "f1_ms2", "f2_ms2", "f3_ms2")
        np.testing.assert_array_equal(f.column("f3_ms2"), [np.nan, 4.0, np.nan])
        np.testing.assert_array_equal(f.column("f2_ms2"), [np.nan, 3.0, 4.0])


def test_frame_from_records_matches_store(tmp_path: Path) -> None:
    records = [rec(i) for i in range(7)]
    with SqliteTelemetryStore(tmp_path / "t.db") as s:
        s.write("gw", records)
        stored = s.query()
    built = FeatureFrame.from_records(("gw", r) for r in records)
    np.testing.assert_array_equal(stored.values, built.values)
    np.testing.assert_array_equal(stored.ts_ns, built.ts_ns)
    assert stored.feature_names == built.feature_names
    sub = built.take(built.asset_ids == "a1")
    assert sub.seqs.tolist() == [1, 6]


_SCHEMA_BEFORE_EPOCHS = """
CREATE TABLE feature_sets (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE);
CREATE TABLE records (
    gateway_id TEXT NOT NULL, seq INTEGER NOT NULL, asset_id TEXT NOT NULL,
    point TEXT NOT NULL, ts_ns INTEGER NOT NULL, window_s REAL NOT NULL,
    stale INTEGER NOT NULL, feature_set INTEGER NOT NULL REFERENCES feature_sets(id),
    vals BLOB NOT NULL, PRIMARY KEY (gateway_id, seq));
CREATE INDEX records_asset_time ON records (asset_id, point, ts_ns);
CREATE INDEX records_time ON records (ts_ns);
INSERT INTO feature_sets (id, names) VALUES (1, 'f0_ms2');
"""


def test_a_file_from_before_epochs_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_BEFORE_EPOCHS)
    for seq in range(3):
        conn.execute("INSERT INTO records VALUES ('gw', ?, 'a0', 'de', ?, 1.0, 0, 1, ?)",
                     (seq, seq * 1000, struct.pack("<d", seq * 2.0)))
    conn.commit()
    conn.close()
    with SqliteTelemetryStore(path) as s:
        assert s.count() == 3
        assert s.query().column("f0_ms2").tolist() == [0.0, 2.0, 4.0]
        # The old rows are the legacy epoch; a real epoch with the same seqs is new data.
        old = FeatureRecord(seq=1, asset_id="a0", point="de", ts=T0, window_s=1.0,
                            features={"f0_ms2": 7.0})
        assert s.write_records("gw", "", [old]).conflicts == (1,)
        assert s.write_records("gw", "0123abcd", [old]).new == 1
        assert s.count() == 4 and s.duplicate_count() == 0
    with SqliteTelemetryStore(path) as s:  # opening again migrates nothing more
        assert s.count() == 4


def test_a_batch_is_one_transaction_a_refusal_stores_none_of_it(tmp_path: Path) -> None:
    from cloud.telemetry import RecordGroup, RecordRejectedError

    store = SqliteTelemetryStore(tmp_path / "t.db")
    good = make_records(0, 5)
    bad = make_records(0, 1)[0].model_copy(update={"seq": 2**64})  # no SQLite integer holds it
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    assert [r.new for r in store.write_batch(
        [RecordGroup("gw-1", "", good), RecordGroup("gw-2", "", good)])] == [5, 5]
    assert sum(s.startswith("INSERT OR IGNORE INTO records") for s in statements) == 10
    assert statements.count("COMMIT") == 1  # both gateways' rows in one commit
    with pytest.raises(RecordRejectedError):
        store.write_batch([RecordGroup("gw-3", "", good), RecordGroup("gw-4", "", [bad])])
    assert store.count() == 10  # nothing of the refused batch
    store.close()
