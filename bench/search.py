"""Search and CSV export over a large fleet history on a real PostgreSQL 15.

Seeds `--assets` assets and `--rows` alerts and as many work orders (migrated schema, so
the trigram GIN indexes of migration 0009 are there), then times `cloud.domain.search`
for a few typical queries, with the trigram indexes and, as the baseline in the same run,
after dropping them (the same queries as sequential scans). Then streams the alerts'
CSV export (`cloud.domain.listing.iter_rows` + `cloud.domain.export.csv_chunks`) and, as
its baseline, a bare `csv.writer` over the same rows read by one Core query.

    python bench/search.py [--assets 2000] [--rows 100000]

Prints figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import time
from datetime import UTC, datetime, timedelta

from _common import best_of
from sqlalchemy import insert, select, text

from cloud.db import make_engine, make_session_factory, upgrade
from cloud.db.models import Alert, Asset, WorkOrder
from cloud.domain import listing
from cloud.domain.export import csv_chunks
from cloud.domain.search import search
from ironwatch_app.local_servers import Postgres

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MODES = ["bearing_outer_race", "bearing_inner_race", "imbalance", "misalignment", "looseness",
         "cavitation", "gear_wear", "overheating", "belt_wear", "lubrication"]
KINDS = ["pump", "fan", "motor", "gearbox", "spindle"]
NAMES = ["冷却泵", "Exhaust fan", "Line motor", "Gearbox", "Spindle"]
PLACES = ["Hall A", "Hall B", "上海 二号车间", "Line 3", "Boiler house"]
QUERIES = ["outer race", "冷却泵 1234", "pump-01777", "lubrication gearbox 99", "zzz-none"]
TRIGRAM_INDEXES = ["ix_assets_name_trgm", "ix_alerts_failure_mode_trgm",
                   "ix_work_orders_title_trgm", "ix_work_orders_failure_mode_trgm",
                   "ix_work_orders_assignee_trgm"]


def seed(url: str, n_assets: int, n_rows: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(7)
    with engine.begin() as conn:
        conn.execute(insert(Asset), [
            {"id": f"{KINDS[i % 5]}-{i:05d}", "name": f"{NAMES[i % 5]} {i}",
             "kind": KINDS[i % 5], "location": PLACES[i % 5], "customer_tier": "standard",
             "running_hours": 0.0, "created_at": T0, "updated_at": T0}
            for i in range(n_assets)
        ])
        ids = [f"{KINDS[i % 5]}-{i:05d}" for i in range(n_assets)]
        for start in range(0, n_rows, 5000):
            alerts, orders = [], []
            for k in range(start, min(start + 5000, n_rows)):
                at = T0 + timedelta(minutes=k)
                asset, mode = rng.choice(ids), rng.choice(MODES)
                alerts.append({"asset_id": asset, "failure_mode": mode, "severity": "warning",
                               "state": "resolved", "score": rng.random() * 3, "evidence": {},
                               "model": "m", "model_version": "1", "opened_at": at,
                               "last_seen_at": at, "absent_rounds": 0,
                               "resolution_note": "=cmd" if k % 97 == 0 else "ok"})
                orders.append({"asset_id": asset, "failure_mode": mode, "failure_mode_code": "",
                               "title": f"{mode.replace('_', ' ').capitalize()} on {asset}",
                               "description": "", "priority": f"P{k % 4}", "priority_reason": "",
                               "state": "closed", "source": "alert", "assignee": f"tech-{k % 40}",
                               "suggested_actions": [], "spare_parts": [], "created_at": at,
                               "updated_at": at, "created_by": "system", "respond_by": at,
                               "resolve_by": at, "resolution_note": ""})
            conn.execute(insert(Alert), alerts)
            conn.execute(insert(WorkOrder), orders)
        conn.execute(text("ANALYZE"))
    engine.dispose()


def time_queries(url: str) -> dict[str, float]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    out: dict[str, float] = {}
    with factory() as session:
        for q in QUERIES:
            out[q] = best_of(lambda q=q: search(session, q), repeats=3) * 1000
    engine.dispose()
    return out


def export_rows_per_s(url: str) -> tuple[float, float, int]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    query = listing.parse_query(listing.ALERTS, {})
    n = 0

    def ours() -> None:
        nonlocal n
        with factory() as session:
            rows = (listing.export_row(listing.ALERTS, r)
                    for r in listing.iter_rows(session, listing.ALERTS, query))
            n = sum(chunk.count(b"\r\n") for chunk in csv_chunks(
                [c.name for c in listing.ALERTS.columns], rows)) - 1

    def bare() -> None:
        with engine.connect() as conn:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for row in conn.execute(select(Alert.__table__).order_by(Alert.opened_at.desc())):
                writer.writerow(row)

    t_ours = best_of(ours, repeats=1)
    t_bare = best_of(bare, repeats=1)
    engine.dispose()
    return n / t_ours, n / t_bare, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    pg = Postgres().start()
    try:
        url = pg.create_database("bench_search")
        t = time.perf_counter()
        seed(url, args.assets, args.rows)
        print(f"seeded {args.assets} assets, {args.rows} alerts and {args.rows} work orders "
              f"in {time.perf_counter() - t:.1f} s")
        indexed = time_queries(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            for name in TRIGRAM_INDEXES:
                conn.execute(text(f"DROP INDEX {name}"))
        engine.dispose()
        scanned = time_queries(url)
        for q in QUERIES:
            print(f"search {q!r:28} indexed {indexed[q]:8.1f} ms   without trigram indexes "
                  f"{scanned[q]:8.1f} ms   ratio {scanned[q] / indexed[q]:5.1f}")
        ours, bare, n = export_rows_per_s(url)
        print(f"CSV export of {n} alerts: {ours:,.0f} rows/s; bare csv.writer over one Core "
              f"query {bare:,.0f} rows/s (export takes {bare / ours:.2f}× the bare time)")
        print(json.dumps({"assets": args.assets, "rows": args.rows,
                          "search_ms_indexed": indexed, "search_ms_without_trigram": scanned,
                          "export_rows_per_s": round(ours), "bare_rows_per_s": round(bare)}))
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
