"""Generated Mosquitto auth against a real broker: gateways stay in their own topics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud.acl import BrokerAccount, BrokerAuthError, acl_text, write_broker_auth
from cloud.ingest import IngestConfig, IngestConnectError, IngestionWorker, MemoryAssetRegistry
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.wire import encode, telemetry_topic
from ironwatch_app.local_servers import Mosquitto
from ironwatch_testing.ingest import make_records, make_telemetry

PASSWORDS = {"gw-a": "pw-a-0123456789abcdef", "gw-b": "pw-b-0123456789abcdef"}
CLOUD = BrokerAccount("cloud", "cloud-0123456789abcdef")


def test_acl_text_confines_each_gateway() -> None:
    text = acl_text(["gw-a"], ["cloud"])
    assert "user gw-a\ntopic write ironwatch/v1/gw-a/telemetry\n" in text
    assert "topic read ironwatch/v1/gw-a/command" in text
    assert "user cloud\ntopic read ironwatch/v1/#\ntopic write ironwatch/v1/+/command" in text
    assert "gw-b" not in text


def test_clashing_usernames_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerAuthError):
        write_broker_auth(tmp_path, {"cloud": "x" * 20}, [CLOUD])


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Mosquitto]:
    files = write_broker_auth(tmp_path / "auth", PASSWORDS, [CLOUD])
    assert "pw-a" not in files.password_file.read_text()  # hashed, not plain
    broker = Mosquitto(password_file=files.password_file, acl_file=files.acl_file)
    broker.start()
    yield broker
    broker.close()


def _client(broker: Mosquitto, user: str, password: str,
            on_message: Callable[..., Any] | None = None) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    c.username_pw_set(user, password)
    if on_message:
        c.on_message = on_message
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c


@pytest.mark.integration
def test_gateway_cannot_publish_into_another_gateways_topics(secured: Mosquitto) -> None:
    got: list[str] = []
    done = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.topic)
        if msg.topic == telemetry_topic("gw-a"):
            done.set()

    cloud = _client(secured, CLOUD.username, CLOUD.password, on_message)
    cloud.subscribe("ironwatch/v1/#", qos=1)
    gw_a = _client(secured, "gw-a", PASSWORDS["gw-a"])
    try:
        time.sleep(0.3)  # let the subscription settle
        payload_b = encode(make_telemetry("gw-b", make_records(0, 1)))
        gw_a.publish(telemetry_topic("gw-b"), payload_b, qos=1).wait_for_publish(5)
        gw_a.publish("ironwatch/v1/gw-b/command", b"{}", qos=1).wait_for_publish(5)
        # Its own topic goes through, and arrives after the forbidden ones would have.
        payload_a = encode(make_telemetry("gw-a", make_records(0, 1)))
        gw_a.publish(telemetry_topic("gw-a"), payload_a, qos=1).wait_for_publish(5)
        assert done.wait(5)
        time.sleep(0.2)
        assert got == [telemetry_topic("gw-a")]
    finally:
        for c in (cloud, gw_a):
            c.disconnect()
            c.loop_stop()


@pytest.mark.integration
def test_wrong_password_is_refused(secured: Mosquitto, tmp_path: Path) -> None:
    cfg = IngestConfig(host=secured.host, port=secured.port, username="cloud", password="wrong")
    worker = IngestionWorker(cfg, SqliteTelemetryStore(tmp_path / "t.db"), MemoryAssetRegistry())
    with pytest.raises(IngestConnectError):
        worker.start(timeout_s=5)


@pytest.mark.integration
def test_cloud_dead_letters_a_payload_speaking_for_another_gateway(
    secured: Mosquitto, tmp_path: Path
) -> None:
    store = SqliteTelemetryStore(tmp_path / "t.db")
    registry = MemoryAssetRegistry({"gw-a": {"asset-1"}, "gw-b": {"asset-1"}})
    cfg = IngestConfig(host=secured.host, port=secured.port, client_id="cloud-ingest",
                       username=CLOUD.username, password=CLOUD.password)
    worker = IngestionWorker(cfg, store, registry)
    worker.start()
    gw_a = _client(secured, "gw-a", PASSWORDS["gw-a"])
    try:
        # Allowed by the broker (own topic) but the payload claims to be gw-b.
        forged = encode(make_telemetry("gw-b", make_records(0, 3)))
        gw_a.publish(telemetry_topic("gw-a"), forged, qos=1).wait_for_publish(5)
        honest = encode(make_telemetry("gw-a", make_records(0, 3)))
        gw_a.publish(telemetry_topic("gw-a"), honest, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while worker.stats.received < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert worker.stats.dead_lettered == {"gateway_mismatch": 1}
        assert store.count(gateway_id="gw-a") == 3 and store.count(gateway_id="gw-b") == 0
    finally:
        gw_a.disconnect()
        gw_a.loop_stop()
        worker.stop()
        store.close()
