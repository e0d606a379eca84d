"""Publisher logic without a broker: batch size limits and in-flight bound."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.outbox import OutboxQueue, PendingRecord
from edge_agent.publisher import MqttPublisher
from ironwatch.wire import GatewayStatus, TelemetryMessage, decode, telemetry_topic, utc_now

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
    # A PUBACK for the first batch removes exactly its records.
    first_mid = min(publisher._inflight)
    publisher._on_publish(publisher.client, None, first_mid, None, None)
    publisher.pump(0)
    assert len(publisher.outbox) == 400 - sizes[0]
    assert publisher.counters.sent == sizes[0]
    assert publisher.inflight_batches == 3  # refilled
    publisher.outbox.close()
