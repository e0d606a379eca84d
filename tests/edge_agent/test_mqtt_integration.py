"""The agent against a real Mosquitto: delivery, broker outage, birth/will status, commands."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeConfig, load_config
from ironwatch.physics import AssetPhysics
from ironwatch.wire import Command, WaveformSnapshot, command_topic, encode
from ironwatch_app.local_servers import Mosquitto, MosquittoUser

from .conftest import FakeSerial, Listener, gateway_toml, wait_until

pytestmark = pytest.mark.integration

GW = "gw-test"


def _config(tmp_path: Path, port: int, interval_s: float = 0.3) -> EdgeConfig:
    path = tmp_path / "gw.toml"
    path.write_text(gateway_toml(gateway_id=GW, broker_port=port, outbox=tmp_path / "ob.db",
                                 interval_s=interval_s))
    return load_config(path)


@contextmanager
def running_agent(config: EdgeConfig) -> Iterator[EdgeAgent]:
    agent = EdgeAgent(config, serial_factory=lambda _s: FakeSerial())
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield agent
    finally:
        stop.set()
        thread.join(20)
        assert not thread.is_alive()


def _publish(port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def test_records_reach_a_subscriber_with_birth_status(
    mosquitto: Mosquitto, tmp_path: Path, listener_factory: Callable[..., Listener]
) -> None:
    listener = listener_factory(mosquitto.port)
    with running_agent(_config(tmp_path, mosquitto.port)) as agent:
        assert wait_until(lambda: len(listener.records()) >= 3)
        # A subscriber that arrives later still sees the retained birth message.
        late = listener_factory(mosquitto.port)
        assert wait_until(lambda: bool(late.retained_status()))
        assert late.retained_status()[0]["state"] == "online"
        assert wait_until(lambda: agent.counters()["sent"] >= 3)
    records = listener.records()
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    first = records[0]
    assert first["asset_id"] == "pump-01" and first["point"] == "de"
    assert first["features"]["velocity_rms_mms"] > 0
    statuses = listener.of_type("status")
    assert statuses[-1]["state"] == "offline"  # clean shutdown publishes it before leaving
    assert {"queued", "sent", "dropped", "decode_errors", "reconnects"} <= set(
        statuses[-1]["counters"])
    assert statuses[-1]["clock_offset_s"] is None


def test_birth_message_carries_the_configured_physics(
    mosquitto: Mosquitto, tmp_path: Path, listener_factory: Callable[..., Listener]
) -> None:
    config = _config(tmp_path, mosquitto.port)
    listener = listener_factory(mosquitto.port)
    with running_agent(config):
        assert wait_until(lambda: bool(listener.of_type("status")))
        birth = listener.of_type("status")[0]
    assert birth["state"] == "online"
    # What the cloud receives is exactly what the gateway computes features with.
    reported = AssetPhysics.model_validate(birth["physics"]["pump-01"])
    assert reported == config.asset("pump-01").physics
    assert reported.speed_rpm == 1480.0
    bearing = reported.bearing_at("de")
    assert bearing is not None and bearing.pitch_diameter_mm == 39.04
    assert listener.of_type("status")[-1]["physics"] == {}  # the will says only 'offline'


def test_broker_outage_loses_nothing_and_keeps_order(
    mosquitto: Mosquitto, tmp_path: Path, listener_factory: Callable[..., Listener]
) -> None:
    listener = listener_factory(mosquitto.port, client_id="outage-listener")
    config = _config(tmp_path, mosquitto.port, interval_s=0.1)
    with running_agent(config) as agent:
        assert wait_until(lambda: len(listener.records()) >= 5)
        mosquitto.stop()
        produced_before = agent.produced
        assert wait_until(lambda: agent.produced >= produced_before + 20)
        assert wait_until(lambda: agent.counters()["queued"] >= 10)
        mosquitto.start()
        assert wait_until(lambda: agent.counters()["reconnects"] >= 1, timeout_s=15)
        assert wait_until(lambda: agent.counters()["queued"] == 0, timeout_s=15)
        last = agent.outbox.last_seq
    assert wait_until(lambda: {r["seq"] for r in listener.records()} >= set(range(1, last + 1)),
                      timeout_s=15)
    seqs = [r["seq"] for r in listener.records()]
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == sorted(first_seen), "records arrived out of order"
    assert set(first_seen) == set(range(1, max(first_seen) + 1)), "a record was lost"
    # QoS 1: a batch whose PUBACK was lost in the outage may come twice, nothing else.
    assert len(seqs) - len(first_seen) <= 8 * 500


def test_commands_snapshot_interval_and_garbage(
    mosquitto: Mosquitto, tmp_path: Path, listener_factory: Callable[..., Listener]
) -> None:
    listener = listener_factory(mosquitto.port)
    with running_agent(_config(tmp_path, mosquitto.port)) as agent:
        assert wait_until(lambda: agent.table.raw_window(("pump-01", "de")) is not None)
        assert wait_until(lambda: agent.publisher is not None and agent.publisher.connected)
        topic = command_topic(GW)
        _publish(mosquitto.port, topic, b"not json at all")
        unknown = {"type": "command", "action": "reboot"}
        _publish(mosquitto.port, topic, json.dumps(unknown).encode())
        now = datetime.now(UTC)
        snap = Command(command_id="c-1", issued_at=now, action="snapshot", asset_id="pump-01",
                       point="de")
        _publish(mosquitto.port, topic, encode(snap))
        assert wait_until(lambda: bool(listener.of_type("snapshot")))
        payload = listener.of_type("snapshot")[0]
        snapshot = WaveformSnapshot.model_validate(payload)
        assert snapshot.request_id == "c-1" and snapshot.point == "de"
        # The gateway names the window it sent: the cloud keeps one per (gateway, asset, id).
        assert snapshot.snapshot_id == WaveformSnapshot.window_id("de", snapshot.ts)
        samples = snapshot.samples()
        assert samples.shape == (2048,)
        assert np.max(np.abs(samples)) == pytest.approx(2.0, abs=0.3)
        missing = Command(command_id="c-2", issued_at=now, action="snapshot", asset_id="nope")
        _publish(mosquitto.port, topic, encode(missing))
        interval = Command(command_id="c-3", issued_at=now, action="set_interval",
                           reporting_interval_s=2.5)
        _publish(mosquitto.port, topic, encode(interval))
        assert wait_until(lambda: agent.reporting_interval_s == 2.5)
        assert wait_until(lambda: agent.counters()["bad_commands"] == 2)
        assert agent.counters()["snapshot_misses"] == 1
        assert wait_until(lambda: any(s["reporting_interval_s"] == 2.5
                                      for s in listener.of_type("status")))


def test_mqtt5_with_password_from_env_and_acl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    gw_user = MosquittoUser("gw-test", "gw-secret-1",
                            acl=[f"topic readwrite ironwatch/v1/{GW}/#"])
    reader = MosquittoUser("cloud", "cloud-secret-1", acl=["topic read ironwatch/v1/#"])
    with Mosquitto(users=[gw_user, reader]) as broker:
        monkeypatch.setenv("IRONWATCH_EDGE_MQTT__PROTOCOL", "5")
        monkeypatch.setenv("IRONWATCH_EDGE_MQTT__USERNAME", "gw-test")
        monkeypatch.setenv("IRONWATCH_EDGE_MQTT__PASSWORD", "gw-secret-1")
        config = _config(tmp_path, broker.port)
        assert config.mqtt.protocol == "5"
        got: list[bytes] = []
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        sub.username_pw_set("cloud", "cloud-secret-1")
        sub.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
        sub.on_connect = lambda c, *_: c.subscribe(f"ironwatch/v1/{GW}/telemetry", qos=1)
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        try:
            with running_agent(config) as agent:
                assert wait_until(lambda: len(got) >= 2)
                assert agent.counters()["sent"] >= 1
        finally:
            sub.loop_stop()
            sub.disconnect()


def test_wrong_password_keeps_records_queued(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with Mosquitto(users=[MosquittoUser("gw-test", "right-one-9")]) as broker:
        monkeypatch.setenv("IRONWATCH_EDGE_MQTT__USERNAME", "gw-test")
        monkeypatch.setenv("IRONWATCH_EDGE_MQTT__PASSWORD", "wrong-one-9")
        with running_agent(_config(tmp_path, broker.port)) as agent:
            assert wait_until(lambda: agent.counters()["queued"] >= 3)
            assert agent.counters()["sent"] == 0
            assert agent.publisher is not None and not agent.publisher.connected
