"""What the metrics cost: ingestion's per-record instrumentation against the store's own write,
and one scrape of the service's registry against a fleet-sized database.

Ingestion: the same batches are written to the embedded store (SQLite, one transaction per
batch) and handed to the metrics calls ingestion makes per write (records stored, lag
histogram) and per message; the ratio says what metrics add to a write.
Scrape: `GET /metrics`'s work (every series, the database gauges and every gateway's
re-exported counters) over G gateways with counters and A alerts and work orders.

    python bench/metrics_overhead.py [--records 50000] [--batch 500] [--gateways 2000]

Prints figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

SELF = Path(__file__).resolve()
sys.path[:0] = [str(SELF.parent), str(SELF.parents[1])]

from _common import best_of  # noqa: E402

from cloud import metrics  # noqa: E402
from cloud.db import (  # noqa: E402
    Alert,
    Asset,
    Gateway,
    WorkOrder,
    make_engine,
    make_session_factory,
    upgrade,
)
from cloud.telemetry import SqliteTelemetryStore  # noqa: E402
from ironwatch.gateway_counters import GATEWAY_COUNTER_SERIES  # noqa: E402
from ironwatch_testing.ingest import make_records  # noqa: E402


def bench_ingest(n_records: int, batch: int, tmp: Path) -> dict[str, float]:
    records = make_records(1, n_records, assets=[f"a{i}" for i in range(100)], n_features=20)
    batches = [records[i:i + batch] for i in range(0, n_records, batch)]
    topic = "ironwatch/v1/gw-1/telemetry"
    runs = iter(range(1000))

    def store_writes() -> None:
        store = SqliteTelemetryStore(tmp / f"t{next(runs)}.db")
        try:
            for b in batches:
                store.write_records("gw-1", "00000000000e0c01", b)
        finally:
            store.close()

    store = SqliteTelemetryStore(tmp / "label.db")

    def metric_calls() -> None:
        now = time.time()
        for b in batches:
            metrics.message_received(topic)
            metrics.records_stored(store, len(b), (r.ts.timestamp() for r in b), now)

    store_s = best_of(store_writes)
    metrics_s = best_of(metric_calls)
    store.close()
    return {
        "store_write_us_per_record": store_s / n_records * 1e6,
        "metrics_us_per_record": metrics_s / n_records * 1e6,
        "metrics_to_store_ratio": metrics_s / store_s,
    }


def bench_scrape(n_gateways: int, n_alerts: int, tmp: Path) -> dict[str, float]:
    engine = make_engine(f"sqlite:///{tmp / 'fleet.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    counters = dict.fromkeys(GATEWAY_COUNTER_SERIES, 12345)
    with factory() as session:
        session.add_all(Gateway(id=f"gw-{g}", state="online", last_seen=now,
                                status={"counters": counters}) for g in range(n_gateways))
        session.flush()
        session.add_all(Asset(id=f"a-{i}", gateway_id=f"gw-{i % n_gateways}")
                        for i in range(n_alerts))
        session.flush()
        session.add_all(
            Alert(asset_id=f"a-{i}", failure_mode="imbalance",
                  state=("open", "resolved", "cleared")[i % 3], severity="warning", score=1.0,
                  model="m", model_version="1", opened_at=now, last_seen_at=now)
            for i in range(n_alerts))
        session.add_all(
            WorkOrder(asset_id=f"a-{i}", failure_mode="imbalance", title="t", priority="P2",
                      state=("open", "closed")[i % 2], created_at=now, updated_at=now,
                      respond_by=now, resolve_by=now)
            for i in range(n_alerts))
        session.commit()
    from prometheus_client import REGISTRY, generate_latest

    without = best_of(lambda: generate_latest(REGISTRY))
    attached = metrics.SOURCES.attach("database", metrics.database_source(factory))
    try:
        size = len(generate_latest(REGISTRY))
        with_db = best_of(lambda: generate_latest(REGISTRY))
    finally:
        attached.stop()
        engine.dispose()
    return {"scrape_s_without_database": without, "scrape_s": with_db,
            "scrape_bytes": float(size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--gateways", type=int, default=2000)
    parser.add_argument("--alerts", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ironwatch-bench-metrics-") as d:
        tmp = Path(d)
        ingest = bench_ingest(args.records, args.batch, tmp)
        print(f"ingestion: store write {ingest['store_write_us_per_record']:.2f} us/record, "
              f"metrics {ingest['metrics_us_per_record']:.3f} us/record "
              f"(ratio {ingest['metrics_to_store_ratio']:.3f})")
        scrape = bench_scrape(args.gateways, args.alerts, tmp)
        print(f"scrape: {scrape['scrape_s'] * 1e3:.1f} ms with {args.gateways} gateways and "
              f"{args.alerts} alerts + work orders ({scrape['scrape_bytes'] / 1e6:.2f} MB), "
              f"{scrape['scrape_s_without_database'] * 1e3:.1f} ms without the database series")
    print(json.dumps({**ingest, **scrape, "records": args.records, "batch": args.batch,
                      "gateways": args.gateways, "alerts": args.alerts}))


if __name__ == "__main__":
    main()
