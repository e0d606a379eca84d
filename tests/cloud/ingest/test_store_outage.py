"""One gateway's records failing transiently in the store do not hold up the others.

A store that is unavailable for one gateway only (a wrapper around the real SQLite store),
a real Mosquitto and the real worker: the other gateway's records are stored within a
second; the failing ones wait unacknowledged, are retried with backoff, and are stored once
the store answers again. Nothing is dead-lettered for a transient error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from cloud.ingest import IngestionWorker
from cloud.telemetry import SqliteTelemetryStore, StoreUnavailableError, WriteResult
from cloud.telemetry._store import RecordWriter
from ironwatch.wire import FeatureRecord
from ironwatch_app.local_servers import Mosquitto
from ironwatch_testing.ingest import Publisher, make_records, make_telemetry

pytestmark = pytest.mark.integration


class _OutageFor:
    """The real store, except that writes for one gateway fail until `recover()`."""

    def __init__(self, inner: SqliteTelemetryStore, gateway_id: str) -> None:
        self.inner = inner
        self.gateway_id = gateway_id
        self.failures = 0
        self._down = threading.Event()
        self._down.set()

    def recover(self) -> None:
        self._down.clear()

    def write_records(self, gateway_id: str, epoch: str,
                      records: Sequence[FeatureRecord]) -> WriteResult:
        if gateway_id == self.gateway_id and self._down.is_set():
            self.failures += 1
            raise StoreUnavailableError("connection refused")
        return self.inner.write_records(gateway_id, epoch, records)

    write_batch = RecordWriter.write_batch  # group by group, through write_records

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_store_outage_for_one_gateway_does_not_delay_another(
    mosquitto: Mosquitto, make_worker: Callable[..., IngestionWorker],
    store: SqliteTelemetryStore, until: Callable[..., None],
) -> None:
    outage = _OutageFor(store, "gw-1")
    worker = make_worker(client_id="outage", store_=outage)
    with Publisher(mosquitto.host, mosquitto.port) as pub:
        pub.publish_telemetry([make_telemetry("gw-1", make_records(0, 10))])
        started = time.monotonic()
        pub.publish_telemetry([make_telemetry("gw-2", make_records(i, 10, assets=("asset-3",)))
                               for i in range(0, 50, 10)])
        until(lambda: store.count(gateway_id="gw-2") == 50, 10)
        waited_s = time.monotonic() - started
    print(f"\ngw-2 stored {waited_s:.2f} s after publishing while gw-1's writes failed")
    assert waited_s < 1.0
    # gw-1's records wait after the in-line retries and are retried again, not dropped.
    until(lambda: worker.stats.store_give_ups >= 2)
    assert store.count(gateway_id="gw-1") == 0 and outage.failures >= 3
    assert worker.stats.dead_lettered == {}
    outage.recover()
    until(lambda: store.count(gateway_id="gw-1") == 10, 15)
    assert store.duplicate_count() == 0
