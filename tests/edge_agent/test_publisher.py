"""Publisher logic without a broker: batch limits, in-flight bound, end-to-end acknowledgement."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_agent.config import load_config
from edge_agent.outbox import OutboxQueue, PendingRecord
from edge_agent.publisher import MqttPublisher
from ironwatch.wire import (
    GatewayStatus,
    StoredAck,
    TelemetryMessage,
    ack_topic,
    decode,
    encode,
    telemetry_topic,
    utc_now,
)

from .conftest import gateway_toml


def _status(state: str) -> GatewayStatus:
    return GatewayStatus(gateway_id="gw-unit", seq=0, sent_at=utc_now(),
                         state="online" if state == "online" else "offline")


@pytest.fixture
def publisher(tmp_path: Path) -> MqttPublisher:
    path = tmp_path / "gw.toml"
    # Port 9 (discard): nothing listens, so the publisher stays disconnected and paho queues.
    path.write_text(gateway_toml(gateway_id="gw-unit", broker_port=9, outbox=tmp_path / "o.db")
                    .replace("status_interval_s = 1", "status_interval_s = 1\n"
                             "max_records_per_message = 50\nmax_message_bytes = 8192\n"
                             "max_inflight_batches = 3"))
    config = load_config(path)
    outbox = OutboxQueue(config.outbox.path)
    features: dict[str, float | None] = {f"band_{i}_rms_ms2": float(i) for i in range(20)}
    outbox.append([PendingRecord("pump-01", "de", datetime.now(UTC), 1.0, features)
                   for _ in range(400)])
    return MqttPublisher(config, outbox, status=_status)


def test_batches_respect_bytes_records_and_inflight(publisher: MqttPublisher) -> None:
    publisher.pump(0)
    assert publisher.inflight_batches == 3  # the bound: the rest waits in the outbox
    sizes = []
    with publisher.client._out_message_mutex:  # inspecting paho's queue
        payloads = [m.payload for m in publisher.client._out_messages.values()]
    seqs: list[int] = []
    for payload in payloads:
        assert len(payload) <= 8192
        message = decode(telemetry_topic("gw-unit"), bytes(payload))
        assert isinstance(message, TelemetryMessage)
        sizes.append(len(message.records))
        seqs += [r.seq for r in message.records]
    assert all(0 < n <= 50 for n in sizes)
    assert seqs == list(range(1, len(seqs) + 1))
    # Nothing was acknowledged: everything is still in the outbox.
    assert len(publisher.outbox) == 400
    # A PUBACK for the first batch: the broker has it, the records now await the cloud.
    first_mid = min(publisher._inflight)
    publisher._on_publish(publisher.client, None, first_mid, None, None)
    publisher.pump(0)
    assert len(publisher.outbox) == 400
    assert publisher.counters.sent == sizes[0] and publisher.awaiting_cloud == sizes[0]
    assert publisher.unsent == 400 - sizes[0]
    assert publisher.inflight_batches == 3  # refilled
    # The cloud's StoredAck for those records removes exactly them.
    _stored(publisher, [(1, sizes[0])])
    assert len(publisher.outbox) == 400 - sizes[0]
    assert publisher.counters.stored == sizes[0] and publisher.awaiting_cloud == 0
    publisher.outbox.close()


def _stored(publisher: MqttPublisher, ranges: list[tuple[int, int]],
            epoch: str | None = None) -> None:
    """Deliver a StoredAck as the broker would, through paho's message callback."""
    ack = StoredAck(gateway_id="gw-unit", epoch=epoch or publisher.outbox.epoch,
                    sent_at=utc_now(), ranges=ranges)
    msg = mqtt.MQTTMessage(topic=ack_topic("gw-unit").encode())
    msg.payload = encode(ack)
    publisher._on_message(publisher.client, None, msg)
    publisher.pump(0)


def _puback_all(publisher: MqttPublisher) -> list[int]:
    """PUBACK every batch in flight; returns their record seqs."""
    seqs: list[int] = []
    for mid in sorted(publisher._inflight):
        seqs += publisher._inflight[mid]
        publisher._on_publish(publisher.client, None, mid, None, None)
    publisher.pump(0)
    return seqs


def test_puback_keeps_records_until_the_cloud_stored_them(publisher: MqttPublisher) -> None:
    publisher.pump(0)
    first = _puback_all(publisher)
    assert len(first) == publisher.awaiting_cloud > 0
    assert len(publisher.outbox) == 400  # the broker has them; the outbox still does too
    # An ack of another epoch (an old outbox) deletes nothing.
    _stored(publisher, [(1, 400)], epoch="0123456789abcdef")
    assert len(publisher.outbox) == 400 and publisher.counters.foreign_acks == 1
    # A garbled ack is counted, not applied.
    bad = mqtt.MQTTMessage(topic=ack_topic("gw-unit").encode())
    bad.payload = b'{"type": "ack"}'
    publisher._on_message(publisher.client, None, bad)
    assert publisher.counters.bad_acks == 1
    # Ranges may cover seqs the gateway never sent: only the outbox's own records count.
    _stored(publisher, [(0, first[2]), (first[4], first[4])])
    assert publisher.counters.stored == 4
    assert len(publisher.outbox) == 396
    assert publisher.awaiting_cloud == len(first) - 4
    assert [r.seq for r in publisher.outbox.peek(limit=3)] == [first[3], *first[5:7]]
    # One wide range covers everything: all of it goes, nothing awaits any more.
    _stored(publisher, [(0, 2**40)])
    assert len(publisher.outbox) == 0 and publisher.awaiting_cloud == 0
    assert publisher.counters.stored == 400


def _send_everything(publisher: MqttPublisher) -> list[int]:
    """PUBACK batch after batch until the whole outbox is with the broker."""
    publisher.pump(0)
    seqs: list[int] = []
    while publisher.inflight_batches:
        seqs += _puback_all(publisher)
    return seqs


def test_records_awaiting_the_cloud_are_sent_again_in_order(publisher: MqttPublisher) -> None:
    first = _send_everything(publisher)
    assert first == list(range(1, 401)) and publisher.unsent == 0
    _stored(publisher, [(1, 100)])
    # A reconnect: the broker may have restarted without them; they go out again, in order.
    publisher._events.put(("connect", None))
    publisher.pump(0)
    again = [s for mid in sorted(publisher._inflight) for s in publisher._inflight[mid]]
    assert again == list(range(101, 101 + len(again))) and publisher.counters.resent == len(again)
    # Stored while the copies are in flight: their PUBACKs do not make them await again.
    _stored(publisher, [(101, 200)])
    _puback_all(publisher)
    assert publisher.awaiting_cloud == 200 and publisher.unsent == 0
    rest = _send_everything(publisher)
    assert rest == sorted(rest) and rest[-1] == 400
    assert publisher.awaiting_cloud == 200 and not publisher._resend
    assert len(again) <= publisher.counters.resent <= 300


def test_no_stored_ack_in_time_sends_again_with_backoff(publisher: MqttPublisher,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [time.monotonic()]
    monkeypatch.setattr("edge_agent.publisher.time.monotonic", lambda: clock[0])
    publisher._connected.set()  # the timeout applies only while connected
    assert len(_send_everything(publisher)) == 400
    wait = publisher.config.mqtt.stored_ack_timeout_s
    clock[0] += wait - 1
    publisher.pump(0)
    assert publisher.counters.resent == 0
    clock[0] += 2
    assert _send_everything(publisher) == list(range(1, 401))
    assert publisher.counters.resent == 400
    # The next try waits twice as long.
    clock[0] += wait + 1
    publisher.pump(0)
    assert publisher.counters.resent == 400
    clock[0] += wait
    assert _send_everything(publisher) == list(range(1, 401))
    assert publisher.counters.resent == 800
    # A StoredAck resets the wait.
    _stored(publisher, [(1, 10)])
    clock[0] += wait + 1
    publisher.pump(0)
    assert publisher.counters.resent > 800


def test_at_most_max_unstored_records_are_out(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(gateway_toml(gateway_id="gw-unit", broker_port=9, outbox=tmp_path / "o.db")
                    .replace("status_interval_s = 1", "status_interval_s = 1\n"
                             "max_records_per_message = 10\nmax_unstored_records = 25"))
    config = load_config(path)
    with OutboxQueue(config.outbox.path) as outbox:
        outbox.append([PendingRecord("pump-01", "de", datetime.now(UTC), 1.0,
                                     {"velocity_rms_mms": 1.0}) for _ in range(100)])
        pub = MqttPublisher(config, outbox, status=_status)
        pub.pump(0)
        assert _puback_all(pub) == list(range(1, 31))  # 3 batches: the third crosses 25
        assert pub.awaiting_cloud == 30 and pub.inflight_batches == 0
        _stored(pub, [(1, 10)])
        assert pub.inflight_batches == 1  # room for one more batch
