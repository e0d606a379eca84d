"""A synthetic fleet for tests that drive the real cloud over a real broker.

Feature windows for assets on gateways (some degrading after commissioning), an outer-race
waveform, and a stand-in for the gateways' MQTT side that publishes that telemetry and
answers the cloud's snapshot commands as an edge agent would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ironwatch.wire import (
    Command,
    FeatureRecord,
    TelemetryMessage,
    WaveformSnapshot,
    command_topic,
    decode,
    encode,
    snapshot_topic,
    telemetry_topic,
)
from models.bearing import BearingGeometry

__all__ = [
    "HEALTHY_FEATURES",
    "PUMP_BEARING",
    "SHAFT_RPM",
    "SnapshotGateways",
    "fleet_messages",
    "outer_race_waveform",
    "wait_for",
]

SHAFT_RPM = 1480.0
PUMP_BEARING = BearingGeometry(n_balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04)
HEALTHY_FEATURES = {
    "accel_rms_ms2": 2.0, "accel_peak_ms2": 7.0, "crest_factor": 3.5, "kurtosis": 3.0,
    "velocity_rms_mms": 1.2, "env_bpfo_ms2": 0.05, "env_bpfi_ms2": 0.05,
    "env_bsf_ms2": 0.04, "env_ftf_ms2": 0.03, "order_1x_ms2": 0.8, "order_2x_ms2": 0.3,
}


def fleet_messages(
    gateway_of: Mapping[str, str], degrading: Collection[str], n_windows: int,
    commissioning: int, *, seed: int, epoch: str,
) -> list[tuple[str, TelemetryMessage]]:
    """Every asset's windows, 1 s apart and ending now, batched ten windows per message;
    the `degrading` assets' bearing features grow after `commissioning` windows."""
    rng = np.random.default_rng(seed)
    start = datetime.now(UTC) - timedelta(seconds=n_windows + 5)
    gateways = sorted(set(gateway_of.values()))
    seqs = dict.fromkeys(gateways, 0)
    out: list[tuple[str, TelemetryMessage]] = []
    for w in range(0, n_windows, 10):
        for gw in gateways:
            records = []
            for asset in (a for a, g in gateway_of.items() if g == gw):
                for k in range(w, min(w + 10, n_windows)):
                    feats = {n: v * float(np.exp(rng.normal(0, 0.05)))
                             for n, v in HEALTHY_FEATURES.items()}
                    if asset in degrading and k >= commissioning:
                        growth = float(np.exp(0.08 * (k - commissioning)))
                        for name in ("env_bpfo_ms2", "velocity_rms_mms", "kurtosis"):
                            feats[name] *= growth
                    records.append(FeatureRecord(
                        seq=seqs[gw], asset_id=asset, point="de_radial",
                        ts=start + timedelta(seconds=k), window_s=1.0, features=dict(feats),
                    ))
                    seqs[gw] += 1
            out.append((gw, TelemetryMessage(gateway_id=gw, epoch=epoch, seq=records[0].seq,
                                             sent_at=datetime.now(UTC), records=records)))
    return out


def outer_race_waveform(seconds: float = 2.0, fs: float = 20_000.0) -> np.ndarray:
    """Acceleration of a bearing with an outer-race defect: impacts at BPFO ring a resonance."""
    rng = np.random.default_rng(1)
    shaft_hz = SHAFT_RPM / 60.0
    bpfo_hz = PUMP_BEARING.defect_frequencies(shaft_hz).bpfo
    t = np.arange(int(fs * seconds)) / fs
    x = 0.3 * rng.normal(size=t.size) + 0.5 * np.sin(2 * np.pi * shaft_hz * t)
    ring = 3.0 * np.exp(-t[:400] * 800) * np.sin(2 * np.pi * 3000.0 * t[:400])
    for start in (np.arange(0.0, seconds, 1.0 / bpfo_hz) * fs).astype(int):
        seg = x[start:start + 400]
        seg += ring[: seg.size]
    return x


class SnapshotGateways:
    """Publishes telemetry for its gateways and answers snapshot commands like edge agents."""

    def __init__(self, host: str, port: int, gateways: Collection[str]) -> None:
        self.commands: list[Command] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-gateways")
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.subscribe([(command_topic(gw), 1) for gw in gateways])
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: Any) -> None:
        command = decode(message.topic, message.payload)
        assert isinstance(command, Command) and command.asset_id is not None
        self.commands.append(command)
        gateway = message.topic.split("/")[2]
        snapshot = WaveformSnapshot(
            gateway_id=gateway, seq=len(self.commands), sent_at=datetime.now(UTC),
            request_id=command.command_id, asset_id=command.asset_id,
            point=command.point or "de_radial", ts=datetime.now(UTC),
            sample_rate_hz=20_000.0, speed_rpm=SHAFT_RPM,
            samples_f32le_b64=WaveformSnapshot.pack(outer_race_waveform()),
        )
        client.publish(snapshot_topic(gateway), encode(snapshot), qos=1)

    def publish(self, messages: list[tuple[str, TelemetryMessage]]) -> None:
        for gw, msg in messages:
            self.client.publish(telemetry_topic(gw), encode(msg), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(predicate: Callable[[], Any], timeout_s: float, every_s: float = 0.3) -> Any:
    """Poll until `predicate` returns something truthy, and return it; AssertionError after."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s} s")
