"""Delivery against a real Mosquitto: exact loss accounting, and end-to-end acknowledgement
through a broker crash."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.acl import BrokerAccount, generate_password, write_broker_auth
from cloud.ingest import IngestConfig, IngestionWorker, MemoryAssetRegistry
from cloud.telemetry import SqliteTelemetryStore
from edge_agent.agent import EdgeAgent
from edge_agent.config import load_config
from edge_agent.outbox import OutboxQueue, PendingRecord
from edge_agent.publisher import MqttPublisher
from ironwatch.mqtt import BrokerSettings
from ironwatch.wire import GatewayStatus, StoredAck, ack_topic, encode, utc_now
from ironwatch_app.local_servers import Mosquitto, free_port

from .conftest import FakeSerial, Listener, gateway_toml, wait_until

pytestmark = pytest.mark.integration

GW = "gw-count"


def _status(state: str) -> GatewayStatus:
    return GatewayStatus(gateway_id=GW, seq=0, sent_at=utc_now(),
                         state="online" if state == "online" else "offline")


def test_overflow_counter_is_exact_with_records_in_flight(
    tmp_path: Path, listener_factory: Callable[..., Listener]
) -> None:
    port = free_port()  # the broker is not up yet: batches wait in paho's queue
    path = tmp_path / "gw.toml"
    path.write_text(
        gateway_toml(gateway_id=GW, broker_port=port, outbox=tmp_path / "o.db")
        .replace("status_interval_s = 1", "status_interval_s = 1\n"
                 "max_records_per_message = 5\nmax_inflight_batches = 2")
        .replace('[outbox]\n', '[outbox]\nmax_records = 20\n')
    )
    config = load_config(path)
    outbox = OutboxQueue(config.outbox.path, max_records=config.outbox.max_records)
    publisher = MqttPublisher(config, outbox, status=_status)
    publisher.start()
    produced = 0
    for _ in range(10):
        outbox.append([PendingRecord("pump-01", "de", datetime.now(UTC), 1.0,
                                     {"velocity_rms_mms": float(produced + i)})
                       for i in range(10)])
        produced += 10
        publisher.pump(0)
    assert publisher.inflight_batches == 2  # 10 records are with paho, the outbox is full
    with Mosquitto(port=port) as broker:
        listener = listener_factory(broker.port)
        assert wait_until(listener.client.is_connected)

        def cloud_round() -> bool:
            """Acknowledge what arrived as stored, as the cloud does; True once all is out."""
            seqs = sorted({r["seq"] for r in listener.records()})
            if seqs:
                ack = StoredAck(gateway_id=GW, epoch=outbox.epoch, sent_at=utc_now(),
                                ranges=[(s, s) for s in seqs])
                listener.client.publish(ack_topic(GW), encode(ack), qos=1)
            publisher.pump(0.05)
            return len(outbox) == 0 and publisher.inflight_batches == 0

        try:
            assert wait_until(cloud_round, timeout_s=20)
            stats = outbox.stats()
            assert wait_until(lambda: len({r["seq"] for r in listener.records()})
                              == produced - stats.dropped)
            received = sorted({r["seq"] for r in listener.records()})
        finally:
            publisher.stop(1.0)
            outbox.close()
    # The 10 records paho held went out although the outbox was full; only never-sent
    # records were dropped, and every one of those is missing at the broker.
    assert received == [*range(1, 11), *range(91, 101)]
    assert (stats.dropped, stats.dropped_sent) == (80, 0)
    assert produced - stats.dropped == len(received) == publisher.counters.stored


@pytest.mark.parametrize(
    ("autosave_interval_s", "stored_ack_timeout_s"),
    [(1, 60.0), (3600, 2.0)],
    ids=["autosave-1s", "nothing-saved"],
)
def test_broker_killed_while_the_cloud_is_down_loses_nothing(
    tmp_path: Path, autosave_interval_s: int, stored_ack_timeout_s: float
) -> None:
    """Records the broker acknowledged, then lost in a SIGKILL, are sent again and stored.

    With autosave at 1 s the cloud's session survives and the re-send after the gateway's
    reconnect is enough; with nothing saved the broker forgets the cloud's session too, and
    the stored-ack timeout brings the records back.
    """
    passwords = {GW: generate_password()}
    cloud = BrokerAccount("ironwatch-cloud", generate_password())
    files = write_broker_auth(tmp_path / "auth", passwords, [cloud])
    broker = Mosquitto(workdir=tmp_path / "broker", password_file=files.password_file,
                       acl_file=files.acl_file, cloud_password_file=files.cloud_password_file,
                       cloud_acl_file=files.cloud_acl_file,
                       autosave_interval_s=autosave_interval_s)
    broker.start()
    store = SqliteTelemetryStore(tmp_path / "telemetry.db")
    cfg = IngestConfig(broker=BrokerSettings(host=broker.host, port=broker.cloud_port,
                                             username=cloud.username, password=cloud.password),
                       client_id="cloud-ingest")

    def cloud_worker() -> IngestionWorker:
        worker = IngestionWorker(cfg, store, MemoryAssetRegistry({GW: {"pump-01"}}))
        worker.start(timeout_s=20)
        return worker

    path = tmp_path / "gw.toml"
    path.write_text(
        gateway_toml(gateway_id=GW, broker_port=broker.port, outbox=tmp_path / "o.db",
                     interval_s=0.1)
        .replace("[mqtt]\n", f'[mqtt]\nusername = "{GW}"\npassword = "{passwords[GW]}"\n'
                             f"stored_ack_timeout_s = {stored_ack_timeout_s}\n")
    )
    agent = EdgeAgent(load_config(path), serial_factory=lambda _s: FakeSerial())
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    worker = cloud_worker()
    thread.start()
    try:
        assert wait_until(lambda: agent.counters()["stored"] >= 5, timeout_s=20)
        worker.stop()  # the cloud goes down; the broker queues for its session
        stored_before = agent.counters()["stored"]
        assert wait_until(lambda: agent.counters()["awaiting_cloud"] >= 10, timeout_s=20)
        time.sleep(0.2)
        broker.kill()
        at_risk = agent.counters()["awaiting_cloud"]
        broker.start()
        worker = cloud_worker()
        assert wait_until(lambda: agent.counters()["stored"] >= stored_before + at_risk,
                          timeout_s=30)
    finally:
        stop.set()
        thread.join(30)
        worker.stop()
    try:
        produced = agent.counters()["produced"]
        assert wait_until(lambda: store.count(gateway_id=GW) >= produced, timeout_s=20)
        frame = store.query()
        seqs = sorted(frame.seqs[frame.gateway_ids == GW].tolist())
        lost = sorted(set(range(1, produced + 1)) - set(seqs))
        print(f"autosave {autosave_interval_s} s: produced {produced}, at risk in the crash "
              f"{at_risk}, resent {agent.counters()['resent']}, lost {len(lost)}")
        assert lost == [] and seqs == list(range(1, produced + 1))
        assert agent.counters()["dropped"] == 0
        with OutboxQueue(tmp_path / "o.db") as outbox:
            assert len(outbox) == 0  # every record confirmed stored, so none left behind
    finally:
        store.close()
        broker.close()


def test_a_deleted_outbox_comes_back_with_a_new_epoch_in_birth_and_telemetry(
    mosquitto: Mosquitto, tmp_path: Path, listener_factory: Callable[..., Listener]
) -> None:
    listener = listener_factory(mosquitto.port)
    path = tmp_path / "gw.toml"
    path.write_text(gateway_toml(gateway_id=GW, broker_port=mosquitto.port,
                                 outbox=tmp_path / "o.db", interval_s=0.1))

    def run_until_records(n: int) -> str:
        agent = EdgeAgent(load_config(path), serial_factory=lambda _s: FakeSerial())
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        try:
            epoch = agent.outbox.epoch
            assert wait_until(lambda: len([m for m in listener.of_type("telemetry")
                                           if m["epoch"] == epoch]) >= n, timeout_s=15)
        finally:
            stop.set()
            thread.join(20)
        return epoch

    first = run_until_records(2)
    for leftover in tmp_path.glob("o.db*"):
        leftover.unlink()  # the SD card is swapped
    second = run_until_records(2)
    assert first != second
    births = [s for s in listener.of_type("status") if s["state"] == "online"]
    assert [b["epoch"] for b in births][:1] == [first] and births[-1]["epoch"] == second
    for epoch in (first, second):
        seqs = [r["seq"] for m in listener.of_type("telemetry") if m["epoch"] == epoch
                for r in m["records"]]
        assert seqs[0] == 1  # each outbox numbers its records from 1
