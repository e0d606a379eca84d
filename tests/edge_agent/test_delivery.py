"""Delivery accounting against a real Mosquitto: what the outbox says it dropped is what never
arrived, exactly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.outbox import OutboxQueue, PendingRecord
from edge_agent.publisher import MqttPublisher
from ironwatch.wire import GatewayStatus, StoredAck, ack_topic, encode, utc_now
from ironwatch_app.local_servers import Mosquitto, free_port

from .conftest import Listener, gateway_toml, wait_until

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
