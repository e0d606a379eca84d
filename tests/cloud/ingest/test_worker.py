"""IngestionWorker against a real Mosquitto: store, dedup, dead letters, sessions, sharing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from cloud.ingest import IngestionWorker, SqliteDeadLetterStore
from cloud.telemetry import SqliteTelemetryStore, StoreUnavailableError, WriteResult
from cloud.telemetry._store import RecordWriter
from ironwatch.mqtt import BrokerSettings
from ironwatch.wire import (
    FeatureRecord,
    GatewayStatus,
    WaveformSnapshot,
    encode,
    snapshot_topic,
    status_topic,
    telemetry_topic,
    utc_now,
)
from ironwatch_app.local_servers import Mosquitto
from ironwatch_testing.ingest import Publisher, make_records, make_telemetry

pytestmark = pytest.mark.integration

Until = Callable[..., None]


def _batches(gw: str, first: int, n_msgs: int, per_msg: int = 10,
             assets: tuple[str, ...] = ("asset-1", "asset-2")) -> list[Any]:
    return [make_telemetry(gw, make_records(first + i * per_msg, per_msg, assets=assets))
            for i in range(n_msgs)]


def test_records_are_stored_once_even_when_redelivered(
    mosquitto: Mosquitto, make_worker: Callable[..., IngestionWorker],
    store: SqliteTelemetryStore, until: Until,
) -> None:
    worker = make_worker()
    msgs = _batches("gw-1", 0, 20)
    with Publisher(mosquitto.host, mosquitto.port) as pub:
        pub.publish_telemetry(msgs)
        pub.publish_telemetry(msgs[:5])  # a replay after a gateway reconnect
    until(lambda: worker.stats.records_received == 250)
    stats = worker.stats
    assert store.count() == 200 and store.count(gateway_id="gw-1") == 200
    assert stats.stored == 200 and stats.duplicates == 50
    assert store.duplicate_count() == 0


def test_bad_messages_are_dead_lettered_and_ingestion_goes_on(
    mosquitto: Mosquitto, make_worker: Callable[..., IngestionWorker],
    store: SqliteTelemetryStore, until: Until, tmp_path: Any,
) -> None:
    worker = make_worker(start=False)
    worker.dead_letters = SqliteDeadLetterStore(tmp_path / "dead.db")
    worker.start()
    with Publisher(mosquitto.host, mosquitto.port) as pub:
        pub.publish(telemetry_topic("gw-1"), b"\x00garbage" * 10_000).wait_for_publish(5)
        pub.publish(telemetry_topic("gw-2"), encode(_batches("gw-1", 0, 1)[0])).wait_for_publish(5)
        pub.publish(telemetry_topic("gw-x"), encode(_batches("gw-x", 0, 1)[0])).wait_for_publish(5)
        pub.publish_telemetry(_batches("gw-1", 100, 3))
    until(lambda: worker.stats.received == 6)
    assert worker.stats.dead_lettered == {
        "invalid_payload": 1, "gateway_mismatch": 1, "unknown_gateway": 1
    }
    assert store.count() == 30
    letters = worker.dead_letters.recent()
    assert len(letters) == 3 and letters[-1].payload_size == 80_000
    assert len(letters[-1].payload) == worker.config.max_dead_letter_payload_bytes


def test_broker_keeps_messages_while_the_worker_is_down(
    mosquitto: Mosquitto, make_worker: Callable[..., IngestionWorker],
    store: SqliteTelemetryStore, until: Until,
) -> None:
    worker = make_worker(client_id="cloud-a")
    worker.stop()
    with Publisher(mosquitto.host, mosquitto.port) as pub:
        pub.publish_telemetry(_batches("gw-1", 0, 30))
    again = make_worker(client_id="cloud-a")  # same client id: resumes the session
    until(lambda: store.count() == 300)
    assert again.stats.stored == 300


class _DownStore:
    """A store whose writes always fail, like a database that is down."""

    def __init__(self, inner: SqliteTelemetryStore) -> None:
        self.inner = inner
        self.attempts = 0
        self.tried = threading.Event()

    def write_records(self, gateway_id: str, epoch: str,
                      records: Sequence[FeatureRecord]) -> WriteResult:
        self.attempts += 1
        self.tried.set()
        raise StoreUnavailableError("down")

    write_batch = RecordWriter.write_batch  # group by group, through write_records

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_nothing_is_acknowledged_before_the_write_succeeds(
    mosquitto: Mosquitto, make_worker: Callable[..., IngestionWorker],
    store: SqliteTelemetryStore, until: Until,
) -> None:
    down = _DownStore(store)
    crashed = make_worker(client_id="cloud-b", store_=down)
    with Publisher(mosquitto.host, mosquitto.port) as pub:
        pub.publish_telemetry(_batches("gw-1", 0, 10))
    assert down.tried.wait(10)
    until(lambda: down.attempts >= 2)  # it retries instead of dropping
    crashed.stop(drain=False)  # the process dies with records in hand
    assert store.count() == 0
    make_worker(client_id="cloud-b")
    until(lambda: store.count() == 100)
    assert store.duplicate_count() == 0


def test_shared_subscription_spreads_the_stream_over_two_workers(
    mosquitto: Mosquitto, make_worker: Callable[..., IngestionWorker],
    store: SqliteTelemetryStore, until: Until,
) -> None:
    a = make_worker(client_id="w-a", shared_group="ironwatch")
    b = make_worker(client_id="w-b", shared_group="ironwatch")
    with Publisher(mosquitto.host, mosquitto.port) as pub:
        pub.publish_telemetry(_batches("gw-1", 0, 200, per_msg=5))
        pub.publish_telemetry([make_telemetry("gw-2", make_records(0, 5, assets=("asset-3",)))
                               for _ in range(1)])
    until(lambda: store.count() == 1005)
    until(lambda: a.stats.received + b.stats.received == 201)
    assert a.stats.received > 0 and b.stats.received > 0
    assert a.stats.duplicates + b.stats.duplicates == 0
    assert store.duplicate_count() == 0


def test_status_and_snapshot_reach_callbacks_and_store(
    mosquitto: Mosquitto, make_worker: Callable[..., IngestionWorker],
    store: SqliteTelemetryStore, until: Until,
) -> None:
    seen: list[Any] = []
    worker = make_worker(start=False)
    worker._on_status = seen.append
    worker._on_snapshot = seen.append
    worker.start()
    status = GatewayStatus(gateway_id="gw-1", seq=5, sent_at=utc_now(), state="online")
    snap = WaveformSnapshot(
        gateway_id="gw-1", seq=6, sent_at=utc_now(), asset_id="asset-1", point="de_radial",
        ts=utc_now(), sample_rate_hz=25_600, samples_f32le_b64=WaveformSnapshot.pack([0.5] * 64),
    )
    with Publisher(mosquitto.host, mosquitto.port) as pub:
        pub.publish(status_topic("gw-1"), encode(status)).wait_for_publish(5)
        pub.publish(snapshot_topic("gw-1"), encode(snap)).wait_for_publish(5)
    until(lambda: len(seen) == 2)
    assert isinstance(seen[0], GatewayStatus) and isinstance(seen[1], WaveformSnapshot)
    latest = store.latest_snapshot("asset-1")
    assert latest is not None and latest.samples().shape == (64,)


def test_worker_reconnects_after_a_broker_restart(
    mosquitto: Mosquitto, make_worker: Callable[..., IngestionWorker],
    store: SqliteTelemetryStore, until: Until,
) -> None:
    worker = make_worker(client_id="cloud-c")
    with Publisher(mosquitto.host, mosquitto.port) as pub:
        pub.publish_telemetry(_batches("gw-1", 0, 5))
    until(lambda: store.count() == 50)
    mosquitto.restart(down_s=1.0)
    until(lambda: worker.stats.connects >= 2)
    with Publisher(mosquitto.host, mosquitto.port) as pub:
        pub.publish_telemetry(_batches("gw-1", 50, 5))
    until(lambda: store.count() == 100)


def test_worker_started_before_the_broker_catches_up(
    store: SqliteTelemetryStore, registry: Any, until: Until,
) -> None:
    from cloud.ingest import IngestConfig
    from ironwatch_app.local_servers import free_port

    broker = Mosquitto(port=free_port())
    config = IngestConfig(broker=BrokerSettings(port=broker.port), client_id="early")
    worker = IngestionWorker(config, store, registry)
    worker.start(wait=False)  # the cloud may come up first; it keeps retrying
    try:
        broker.start()
        until(lambda: worker.stats.connects >= 1, 20)
        with Publisher(broker.host, broker.port) as pub:
            pub.publish_telemetry(_batches("gw-1", 0, 3))
        until(lambda: store.count() == 30)
    finally:
        worker.stop()
        broker.close()


def test_ingestion_into_influxdb(mosquitto: Mosquitto, registry: Any, until: Until,
                                 tmp_path: Any) -> None:
    from cloud.ingest import IngestConfig
    from cloud.telemetry import InfluxStore
    from ironwatch_app.local_servers import InfluxD

    with InfluxD() as influx, InfluxStore(influx.url, database=influx.database,
                                          snapshot_dir=tmp_path) as store:
        worker = IngestionWorker(IngestConfig(broker=BrokerSettings(port=mosquitto.port),
                                              client_id="to-influx"),
                                 store, registry)
        worker.start()
        try:
            msgs = _batches("gw-1", 0, 10)
            with Publisher(mosquitto.host, mosquitto.port) as pub:
                pub.publish_telemetry(msgs)
                pub.publish_telemetry(msgs[:3])
            until(lambda: worker.stats.received == 13, 30)
            assert store.count() == 100 and store.duplicate_count() == 0
            assert worker.stats.stored == 100 and worker.stats.duplicates == 30
        finally:
            worker.stop()
