"""Generated Mosquitto auth against a real broker: gateways stay in their own topics."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud.acl import (
    BrokerAccount,
    BrokerAuthError,
    acl_text,
    broker_conf_text,
    listener_lines,
    write_broker_auth,
)
from cloud.ingest import IngestConfig, IngestConnectError, IngestionWorker, MemoryAssetRegistry
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.mqtt import BrokerSettings
from ironwatch.wire import encode, telemetry_topic
from ironwatch_app.local_servers import Mosquitto, free_ports, stop_process, wait_for_port
from ironwatch_testing.ingest import Publisher, make_records, make_telemetry

PASSWORDS = {"gw-a": "pw-a-0123456789abcdef", "gw-b": "pw-b-0123456789abcdef"}
CLOUD = BrokerAccount("cloud", "cloud-0123456789abcdef")


def test_acl_text_confines_each_gateway() -> None:
    text = acl_text(["gw-a"], ["cloud"])
    assert "user gw-a\ntopic write ironwatch/v1/gw-a/telemetry\n" in text
    assert "topic read ironwatch/v1/gw-a/command" in text
    assert "user cloud\ntopic read ironwatch/v1/#\ntopic write ironwatch/v1/+/command" in text
    assert "gw-b" not in text


def test_acl_text_lets_the_cloud_acknowledge_and_each_gateway_hear_only_its_own() -> None:
    text = acl_text(["gw-a", "gw-b"], ["cloud"])
    assert "topic write ironwatch/v1/+/ack" in text.split("user gw-a")[0]
    gw_a = text.split("user gw-a\n")[1].split("\n\n")[0].splitlines()
    assert "topic read ironwatch/v1/gw-a/ack" in gw_a
    assert not [line for line in gw_a if "gw-b" in line or "+" in line or "#" in line]


def test_listener_lines_bind_client_ids_and_keep_gateways_off_the_cloud_listener(
    tmp_path: Path,
) -> None:
    files = write_broker_auth(tmp_path, PASSWORDS, [CLOUD])
    assert files.cloud_password_file is not None and files.cloud_acl_file is not None
    cloud_passwd = files.cloud_password_file.read_text()
    assert cloud_passwd.startswith("cloud:") and "gw-a" not in cloud_passwd
    assert "gw-a" not in files.cloud_acl_file.read_text()
    lines = listener_lines(files, gateway_listener=("0.0.0.0", 8883),
                           cloud_listener=("10.0.0.5", 1884))
    gateway, cloud = "\n".join(lines).split("listener 1884 10.0.0.5")
    assert "per_listener_settings true" in gateway and "listener 8883 0.0.0.0" in gateway
    assert "use_username_as_clientid true" in gateway and f"{files.password_file}\n" in gateway
    assert "use_username_as_clientid" not in cloud
    assert f"password_file {files.cloud_password_file}" in cloud


def test_clashing_usernames_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerAuthError):
        write_broker_auth(tmp_path, {"cloud": "x" * 20}, [CLOUD])


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Mosquitto]:
    files = write_broker_auth(tmp_path / "auth", PASSWORDS, [CLOUD])
    assert "pw-a" not in files.password_file.read_text()  # hashed, not plain
    broker = Mosquitto(password_file=files.password_file, acl_file=files.acl_file,
                       cloud_password_file=files.cloud_password_file,
                       cloud_acl_file=files.cloud_acl_file)
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
    cfg = IngestConfig(broker=BrokerSettings(host=secured.host, port=secured.port,
                                             username="cloud", password="wrong"))
    worker = IngestionWorker(cfg, SqliteTelemetryStore(tmp_path / "t.db"), MemoryAssetRegistry())
    with pytest.raises(IngestConnectError):
        worker.start(timeout_s=5)


@pytest.mark.integration
def test_cloud_dead_letters_a_payload_speaking_for_another_gateway(
    secured: Mosquitto, tmp_path: Path
) -> None:
    store = SqliteTelemetryStore(tmp_path / "t.db")
    registry = MemoryAssetRegistry({"gw-a": {"asset-1"}, "gw-b": {"asset-1"}})
    broker = BrokerSettings(host=secured.host, port=secured.port,
                            username=CLOUD.username, password=CLOUD.password)
    cfg = IngestConfig(broker=broker, client_id="cloud-ingest")
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


def _connect(port: int, user: str, password: str, client_id: str, *,
             clean_start: bool = True) -> tuple[mqtt.Client, threading.Event, list[Any]]:
    """An MQTT 5 client; returns it, an event set on CONNACK success, and its disconnects."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                    protocol=MQTTProtocolVersion.MQTTv5)
    c.username_pw_set(user, password)
    c.reconnect_delay_set(1, 1)
    up = threading.Event()
    downs: list[Any] = []
    c.on_connect = lambda _c, _u, _f, rc, _p: up.set() if not rc.is_failure else downs.append(rc)
    c.on_disconnect = lambda _c, _u, _f, rc, _p: downs.append(rc)
    c.connect_async("127.0.0.1", port, clean_start=clean_start)
    c.loop_start()
    return c, up, downs


def _close(*clients: mqtt.Client) -> None:
    for c in clients:
        c.disconnect()
        c.loop_stop()


@pytest.mark.integration
def test_a_gateway_cannot_take_another_gateways_client_id(secured: Mosquitto) -> None:
    gw_b, b_up, b_downs = _connect(secured.port, "gw-b", PASSWORDS["gw-b"], "gw-b")
    attackers = []
    try:
        assert b_up.wait(5)
        for _ in range(3):  # gw-a's credentials, gw-b's client id, again and again
            attacker, up, _ = _connect(secured.port, "gw-a", PASSWORDS["gw-a"], "gw-b")
            attackers.append(attacker)
            assert up.wait(5)  # it is let in ... under its own id, gw-a
        time.sleep(0.5)
        assert b_downs == [], "gw-b was kicked off"
        assert gw_b.is_connected()
        # gw-b still delivers.
        got = threading.Event()
        cloud = _client(secured, CLOUD.username, CLOUD.password,
                        lambda *_a: got.set())
        cloud.subscribe(telemetry_topic("gw-b"), qos=1)
        time.sleep(0.3)
        payload = encode(make_telemetry("gw-b", make_records(0, 1)))
        gw_b.publish(telemetry_topic("gw-b"), payload, qos=1).wait_for_publish(5)
        assert got.wait(5)
        _close(cloud)
    finally:
        _close(gw_b, *attackers)


@pytest.mark.integration
def test_a_gateway_cannot_wipe_the_clouds_session(secured: Mosquitto, tmp_path: Path) -> None:
    """As gw-a, connect under the cloud worker's client id with a clean start: nothing lost."""
    store = SqliteTelemetryStore(tmp_path / "t.db")
    registry = MemoryAssetRegistry({"gw-a": {"asset-1"}})
    cfg = IngestConfig(broker=BrokerSettings(host=secured.host, port=secured.cloud_port,
                                             username=CLOUD.username, password=CLOUD.password),
                       client_id="cloud-ingest")
    assert secured.cloud_port != secured.port
    worker = IngestionWorker(cfg, store, registry)
    worker.start()
    worker.stop()  # the cloud is down; its persistent session queues for it
    try:
        with Publisher(secured.host, secured.port, username="gw-a",
                       password=PASSWORDS["gw-a"]) as gw_a:
            sent = gw_a.publish_telemetry(
                [make_telemetry("gw-a", make_records(i * 10, 10)) for i in range(5)])
        # The attack, on the gateway listener: gw-a's client id is forced to "gw-a".
        attacker, up, _ = _connect(secured.port, "gw-a", PASSWORDS["gw-a"], "cloud-ingest")
        assert up.wait(5)
        _close(attacker)
        # ... and on the cloud listener gw-a's password does not open anything.
        refused, up, downs = _connect(secured.cloud_port, "gw-a", PASSWORDS["gw-a"],
                                      "cloud-ingest")
        time.sleep(1.0)
        assert not up.is_set() and downs
        _close(refused)
        worker = IngestionWorker(cfg, store, registry)
        worker.start()
        deadline = time.monotonic() + 10
        while store.count() < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.count(gateway_id="gw-a") == sent == 50  # 0 acknowledged records lost
    finally:
        worker.stop()
        store.close()


@pytest.mark.integration
def test_generated_mosquitto_conf_runs_and_keeps_gateways_off_the_cloud_listener(
    tmp_path: Path,
) -> None:
    files = write_broker_auth(tmp_path / "auth", PASSWORDS, [CLOUD])
    gw_port, cloud_port = free_ports(2)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        broker_conf_text(files, gateway_listener=("127.0.0.1", gw_port),
                         cloud_listener=("127.0.0.1", cloud_port),
                         persistence_location=f"{tmp_path}/")
        # Only for the test: stay the current user (root would switch to `mosquitto`).
        + f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
    )
    with open(tmp_path / "broker.log", "wb") as log:
        proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                                 str(conf)], stdout=log, stderr=log)
    clients: list[mqtt.Client] = []
    try:
        wait_for_port(gw_port)
        wait_for_port(cloud_port)
        gw, gw_up, _ = _connect(gw_port, "gw-a", PASSWORDS["gw-a"], "gw-a")
        cloud, cloud_up, _ = _connect(cloud_port, CLOUD.username, CLOUD.password, "ingest-7")
        intruder, intruder_up, refused = _connect(cloud_port, "gw-a", PASSWORDS["gw-a"], "x")
        clients += [gw, cloud, intruder]
        assert gw_up.wait(5) and cloud_up.wait(5)
        time.sleep(0.5)
        assert not intruder_up.is_set() and refused
    finally:
        _close(*clients)
        stop_process(proc)
