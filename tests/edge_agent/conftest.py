"""Fixtures for edge_agent tests: config files, synthetic sensor frames, an MQTT listener."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_bridge import Frame, SampleBlock, encode

SAMPLE_RATE_HZ = 12_800.0
SCALE = 0.001  # m/s² per count


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 10.0, every_s: float = 0.05
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return predicate()


def sine_block(
    device_id: int, seq: int, first_index: int, n: int = 512, *, freq_hz: float = 24.67,
    amplitude_ms2: float = 2.0, channels: int = 1, seed: int = 0,
) -> SampleBlock:
    """A SampleBlock of a sine plus a little noise on every channel."""
    rng = np.random.default_rng(seed + first_index)
    t = (first_index + np.arange(n)) / SAMPLE_RATE_HZ
    x = amplitude_ms2 * np.sin(2 * np.pi * freq_hz * t)
    data = np.stack([x + 0.05 * rng.standard_normal(n) for _ in range(channels)], axis=1)
    counts = np.clip(np.round(data / SCALE), -32768, 32767).astype("<i2")
    return SampleBlock(device_id, seq, first_index, SAMPLE_RATE_HZ, channels, SCALE,
                       counts.tobytes())


def gateway_toml(
    *, gateway_id: str, broker_port: int, outbox: Path, serial_port: str = "/nonexistent/tty",
    interval_s: float = 0.5, extra: str = "",
) -> str:
    """A gateway config: one asset, one serial source (a path that does not exist by default)."""
    return f"""
gateway_id = "{gateway_id}"
reporting_interval_s = {interval_s}
{extra}

[mqtt]
host = "127.0.0.1"
port = {broker_port}
status_interval_s = 1
reconnect_min_s = 0.2
reconnect_max_s = 1

[outbox]
path = "{outbox}"

[[assets]]
asset_id = "pump-01"
speed_rpm = 1480
[[assets.points]]
id = "de"
bearing = {{ n_balls = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04 }}

[[serial]]
port = "{serial_port}"
device_id = 7
window_samples = 2048
channels = [{{ channel = 0, asset_id = "pump-01", point = "de" }}]
"""


class Listener:
    """An MQTT subscriber collecting decoded JSON payloads per topic."""

    def __init__(self, port: int, topic: str = "ironwatch/v1/#", client_id: str = "") -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self._lock = threading.Lock()
        # A named client keeps its session (and queued QoS 1 messages) across broker restarts.
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=not client_id)
        # paho takes float delays; its hints say int.
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            return  # the garbage commands some tests send on purpose
        with self._lock:
            self.messages.append((msg.topic, payload, bool(msg.retain)))

    def retained_status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [p for t, p, r in self.messages if r and t.endswith("/status")]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for _, p, _ in self.messages if p.get("type") == kind]

    def records(self) -> list[dict[str, Any]]:
        return [r for m in self.of_type("telemetry") for r in m["records"]]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def listener_factory() -> Iterator[Callable[..., Listener]]:
    made: list[Listener] = []

    def make(port: int, client_id: str = "") -> Listener:
        listener = Listener(port, client_id=client_id)
        made.append(listener)
        return listener

    yield make
    for listener in made:
        listener.close()


def write_frames(path: str, frames: list[SampleBlock]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
    try:
        for frame in frames:
            os.write(fd, encode(frame))
    finally:
        os.close(fd)


class FakeSerial:
    """An in-process FrameSource: a steady stream of sine blocks, about real time."""

    def __init__(self, device_id: int = 7, block: int = 512) -> None:
        self.device_id, self.block = device_id, block
        self.seq = 0
        self.closed = threading.Event()

    def read_frames(self, timeout_s: float) -> list[Frame]:
        if self.closed.wait(min(timeout_s, self.block / SAMPLE_RATE_HZ)):
            return []
        frame = sine_block(self.device_id, self.seq, self.seq * self.block, n=self.block)
        self.seq += 1
        return [frame]

    def close(self) -> None:
        self.closed.set()
