"""A record the store itself refuses is found by splitting the batch and dead-lettered alone.

Real InfluxDB 1.x: a database whose retention policy keeps one hour refuses (HTTP 400,
"partial write") a point older than that, although the wire contract and the cloud's time
window accept it. Real Mosquitto and the real ingestion worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.ingest import IngestConfig, IngestionWorker, MemoryDeadLetterStore
from cloud.telemetry import InfluxStore
from ironwatch.mqtt import BrokerSettings
from ironwatch.wire import FeatureRecord
from ironwatch_app.local_servers import InfluxD, Mosquitto
from ironwatch_testing.ingest import Publisher, make_records, make_telemetry

pytestmark = pytest.mark.integration


def test_a_record_the_store_refuses_is_isolated(
    mosquitto: Mosquitto, registry: Any, until: Callable[..., None], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    records = make_records(0, 10, t0=now - timedelta(minutes=10))
    old = records[4]
    records[4] = FeatureRecord(**{**old.model_dump(), "ts": now - timedelta(hours=3)})
    other = make_records(0, 10, assets=("asset-3",), t0=now - timedelta(minutes=10))
    acked: list[tuple[str, str, list[int]]] = []
    letters = MemoryDeadLetterStore()
    with InfluxD() as influx:
        db = f"rp{uuid.uuid4().hex[:8]}"
        influx.query(f'CREATE DATABASE "{db}" WITH DURATION 1h')
        with InfluxStore(influx.url, database=db, snapshot_dir=tmp_path) as store:
            worker = IngestionWorker(IngestConfig(broker=BrokerSettings(port=mosquitto.port),
                                                  client_id="rp-test"),
                                     store, registry, dead_letters=letters,
                                     on_stored=lambda gw, ep, seqs: acked.append((gw, ep, seqs)))
            worker.start()
            try:
                with Publisher(mosquitto.host, mosquitto.port) as pub:
                    pub.publish_telemetry([make_telemetry("gw-1", records),
                                           make_telemetry("gw-2", other)])
                until(lambda: worker.stats.received == 2, 30)
                assert store.count(gateway_id="gw-1") == 9
                assert store.count(gateway_id="gw-2") == 10
            finally:
                worker.stop()
    [letter] = letters.recent()
    assert (letter.reason_code, letter.gateway_id, letter.seq) == ("store_rejected", "gw-1", 4)
    assert "retention policy" in letter.reason
    assert worker.stats.dead_lettered == {"store_rejected": 1}
    # Everything is accounted for: nine stored and one dead-lettered, all acknowledged.
    assert sorted(s for gw, _, seqs in acked if gw == "gw-1" for s in seqs) == list(range(10))
