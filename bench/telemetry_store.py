"""Embedded telemetry store candidates, SQLite (stdlib, WAL) and DuckDB, on the same workload.

Both keep the same row layout as cloud.telemetry.SqliteTelemetryStore (one row per record,
primary key (gateway_id, seq), features as a float64 blob per feature-name set), so the
figures compare engines, not schemas. Workload: the ingestion pattern (batches of
`--batch` records per gateway, idempotent insert, 10 % re-sent), then the scoring pattern
(one asset's recent window, repeatedly) and a full scan into a FeatureFrame.

    python bench/telemetry_store.py [--records 100000] [--batch 100] [--features 12]

Prints figures, then one JSON line. DuckDB is optional (not a project dependency).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import struct
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from cloud.telemetry import SqliteTelemetryStore
from cloud.telemetry._frame import datetime_to_ns
from ironwatch.wire import FeatureRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAN = float("nan")


def workload(n: int, batch: int, n_features: int, gateways: int = 20, assets_per_gw: int = 5,
             ) -> list[tuple[str, list[FeatureRecord]]]:
    """Batches as the ingestion worker hands them over; every 10th batch is sent twice."""
    names = [f"band{j}_ms2" for j in range(n_features)]
    rng = random.Random(7)
    per_gw = n // gateways
    out: list[tuple[str, list[FeatureRecord]]] = []
    for start in range(0, per_gw, batch):
        for g in range(gateways):
            recs = [
                FeatureRecord(
                    seq=s, asset_id=f"gw{g}-a{s % assets_per_gw}", point="de",
                    ts=T0 + timedelta(seconds=s), window_s=1.0,
                    features={k: rng.random() for k in names},
                )
                for s in range(start, min(start + batch, per_gw))
            ]
            out.append((f"gw{g}", recs))
    replays = out[::10]
    return out + replays


class DuckStore:
    """The SQLite store's layout and queries on DuckDB (minimal: write, query, count)."""

    def __init__(self, path: Path) -> None:
        import duckdb

        self.con = duckdb.connect(str(path))
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS records (gateway_id VARCHAR, seq BIGINT, asset_id VARCHAR,"
            " point VARCHAR, ts_ns BIGINT, window_s DOUBLE, stale BOOLEAN, feature_set INTEGER,"
            " vals BLOB, PRIMARY KEY (gateway_id, seq))"
        )
        self.sets: dict[tuple[str, ...], int] = {}

    def write(self, gateway_id: str, records: Sequence[FeatureRecord]) -> int:
        rows: list[Any] = []
        for r in records:
            names = tuple(sorted(r.features))
            set_id = self.sets.setdefault(names, len(self.sets))
            blob = struct.pack(f"<{len(names)}d",
                               *[NAN if (v := r.features[k]) is None else v for k in names])
            rows += [gateway_id, r.seq, r.asset_id, r.point, datetime_to_ns(r.ts), r.window_s,
                     r.stale, set_id, blob]
        # One multi-row statement: DuckDB's executemany runs row by row and is far slower.
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(records))
        self.con.execute("BEGIN")
        inserted = self.con.execute(f"INSERT OR IGNORE INTO records VALUES {values}", rows)
        row = inserted.fetchone()
        self.con.execute("COMMIT")
        return int(row[0]) if row else 0

    def count(self) -> int:
        row = self.con.execute("SELECT COUNT(*) FROM records").fetchone()
        return int(row[0]) if row else 0

    def query(self, asset_id: str | None = None, start_ns: int | None = None) -> int:
        sql = "SELECT gateway_id, seq, asset_id, point, ts_ns, window_s, stale, feature_set, vals "
        sql += "FROM records"
        params: list[Any] = []
        if asset_id is not None:
            sql += " WHERE asset_id = ? AND ts_ns >= ?"
            params = [asset_id, start_ns]
        sql += " ORDER BY ts_ns, gateway_id, seq"
        cols = self.con.execute(sql, params).fetchnumpy()
        blobs = cols["vals"]
        n = len(blobs)
        if n:
            k = len(next(iter(self.sets)))
            np.frombuffer(b"".join(blobs.tolist()), dtype="<f8").reshape(n, k)
        return n

    def close(self) -> None:
        self.con.close()


def run(name: str, store: Any, batches: list[tuple[str, list[FeatureRecord]]],
        n_assets_q: int, window_s: int) -> dict[str, float]:
    n_records = sum(len(r) for _, r in batches)
    t = time.perf_counter()
    new = sum(store.write(gw, recs) for gw, recs in batches)
    t_write = time.perf_counter() - t
    last_s = max(r.seq for _, recs in batches for r in recs)
    start = T0 + timedelta(seconds=last_s - window_s)
    t = time.perf_counter()
    rows_recent = 0
    for i in range(n_assets_q):
        asset = f"gw{i % 20}-a{i % 5}"
        if isinstance(store, SqliteTelemetryStore):
            rows_recent += len(store.query(asset_ids=[asset], start=start))
        else:
            rows_recent += store.query(asset, datetime_to_ns(start))
    t_recent = time.perf_counter() - t
    t = time.perf_counter()
    rows_all = len(store.query()) if isinstance(store, SqliteTelemetryStore) else store.query()
    t_scan = time.perf_counter() - t
    result = {
        "write_records_s": round(n_records / t_write),
        "new_records": new,
        "recent_queries_s": round(n_assets_q / t_recent, 1),
        "recent_rows": rows_recent,
        "scan_rows_s": round(rows_all / t_scan),
    }
    print(f"{name:7s} write {result['write_records_s']:>9,} rec/s   recent-window queries "
          f"{result['recent_queries_s']:>8,}/s   full scan {result['scan_rows_s']:>10,} rows/s")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--features", type=int, default=12)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    batches = workload(args.records, args.batch, args.features)
    out: dict[str, Any] = {"bench": "telemetry_store", "records": args.records,
                           "batch": args.batch, "features": args.features,
                           "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as d:
        sqlite = SqliteTelemetryStore(Path(d) / "t.sqlite")
        out["sqlite"] = run("sqlite", sqlite, batches, args.queries, window_s=300)
        sqlite.close()
        try:
            import duckdb

            duck = DuckStore(Path(d) / "t.duckdb")
            out["duckdb"] = run("duckdb", duck, batches, args.queries, window_s=300)
            out["duckdb_version"] = duckdb.__version__
            duck.close()
        except ImportError:
            print("duckdb not installed: skipped")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
