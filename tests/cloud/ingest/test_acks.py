"""Stored-acks: the cloud tells each gateway which of its records it has stored."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.ingest import IngestionWorker
from cloud.ingest._acks import StoredAckPublisher, seq_ranges
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.wire import (
    MAX_RECORDS_PER_MESSAGE,
    StoredAck,
    ack_topic,
    decode,
    encode,
    telemetry_topic,
)
from ironwatch_app.local_servers import Mosquitto
from ironwatch_testing.ingest import EPOCH, Publisher, make_records, make_telemetry

Until = Callable[..., None]


def test_seq_ranges_merge_runs_and_repeats() -> None:
    assert seq_ranges([5, 1, 2, 3, 3, 9, 10, 7]) == [(1, 3), (5, 5), (7, 7), (9, 10)]
    assert seq_ranges([]) == []


def test_publisher_splits_long_range_lists_and_survives_failures() -> None:
    sent: list[tuple[str, bytes]] = []
    acks = StoredAckPublisher(lambda t, p: sent.append((t, p)))
    acks("gw-1", EPOCH, range(0, 2 * (MAX_RECORDS_PER_MESSAGE + 10), 2))  # no two adjacent
    assert len(sent) == 2 and acks.sent == 2
    messages = [decode(t, p) for t, p in sent]
    assert all(isinstance(m, StoredAck) and m.epoch == EPOCH for m in messages)
    assert sum(len(m.ranges) for m in messages if isinstance(m, StoredAck)) == \
        MAX_RECORDS_PER_MESSAGE + 10

    def broken(_t: str, _p: bytes) -> None:
        raise OSError("no connection")

    failing = StoredAckPublisher(broken)
    failing("gw-1", EPOCH, [1])
    assert failing.failures == 1 and failing.sent == 0


class AckListener:
    """Subscribes to gateways' ack topics, as the gateways do, and collects the acks."""

    def __init__(self, port: int, gateways: list[str]) -> None:
        self.acks: list[StoredAck] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._ready.set()
        self.client.on_connect = lambda c, *_a: c.subscribe([(ack_topic(g), 1) for g in gateways])
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._ready.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ack = decode(msg.topic, bytes(msg.payload))
        assert isinstance(ack, StoredAck)
        with self._lock:
            self.acks.append(ack)

    def seqs(self, gateway_id: str, epoch: str = EPOCH) -> set[int]:
        with self._lock:
            return {s for a in self.acks if a.gateway_id == gateway_id and a.epoch == epoch
                    for s in a.seqs()}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.integration
def test_worker_acknowledges_stored_duplicate_and_dead_lettered_records(
    mosquitto: Mosquitto, make_worker: Callable[..., IngestionWorker],
    store: SqliteTelemetryStore, until: Until,
) -> None:
    worker = make_worker()
    listener = AckListener(mosquitto.port, ["gw-1", "gw-2"])
    try:
        other_epoch = "0123456789abcdef"
        with Publisher(mosquitto.host, mosquitto.port) as pub:
            pub.publish_telemetry([make_telemetry("gw-1", make_records(1, 20))])
            pub.publish_telemetry([make_telemetry("gw-1", make_records(11, 10))])  # a re-send
            pub.publish_telemetry([make_telemetry("gw-1", make_records(40, 5), epoch=other_epoch)])
            # gw-2 may not report asset-1: dead-lettered, and handled all the same.
            pub.publish_telemetry([make_telemetry("gw-2", make_records(1, 3))])
            # Breaks the contract (a record without features): dead-lettered, still acked.
            bad = json.loads(encode(make_telemetry("gw-2", make_records(7, 2))))
            bad["records"][1]["features"] = {}
            pub.publish(telemetry_topic("gw-2"), json.dumps(bad).encode()).wait_for_publish(5)
        until(lambda: worker.stats.received == 5)
        until(lambda: listener.seqs("gw-2") == {1, 2, 3, 7, 8})
        until(lambda: listener.seqs("gw-1") == set(range(1, 21)))
        until(lambda: listener.seqs("gw-1", other_epoch) == set(range(40, 45)))
        assert store.count(gateway_id="gw-1") >= 20 and store.count(gateway_id="gw-2") == 0
        assert sum(worker.stats.dead_lettered.values()) == 2
    finally:
        listener.close()
