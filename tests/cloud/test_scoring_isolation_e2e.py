"""One machine whose diagnosis raises, in the real service: the rest of the fleet goes on.

Real Mosquitto, `ironwatch cloud serve` as a process (through a test-only launcher that
makes diagnosis raise for machines with a 13-ball bearing), gateways publishing over
MQTT and answering snapshot commands. The failing machine's rounds are skipped and shown
on the asset and in /health; the other degrading machine still gets its diagnosed alert
and work order, and the healthy one is still scored.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import paho.mqtt.client as mqtt
import pytest
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
from ironwatch_app.local_servers import Mosquitto, free_port, wait_for_port
from models.bearing import BearingGeometry

pytestmark = pytest.mark.integration

LAUNCHER = Path(__file__).parent / "hooks" / "serve_with_failing_diagnosis.py"
SHAFT_RPM = 1480.0
PUMP_BEARING = BearingGeometry(n_balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04)
# (asset, gateway, balls): the launcher makes diagnosis raise for 13-ball bearings.
ASSETS = (("pump-01", "gw-a", 9), ("fan-02", "gw-b", 13), ("motor-03", "gw-a", 9))
DEGRADING = ("pump-01", "fan-02")
FAILING = "fan-02"
HEALTHY = {
    "accel_rms_ms2": 2.0, "accel_peak_ms2": 7.0, "crest_factor": 3.5, "kurtosis": 3.0,
    "velocity_rms_mms": 1.2, "env_bpfo_ms2": 0.05, "env_bpfi_ms2": 0.05,
    "env_bsf_ms2": 0.04, "env_ftf_ms2": 0.03, "order_1x_ms2": 0.8, "order_2x_ms2": 0.3,
}
FLEET_TOML = '[[gateways]]\nid = "gw-a"\n\n[[gateways]]\nid = "gw-b"\n' + "".join(
    f"""
[[assets]]
id = "{asset}"
gateway_id = "{gateway}"
kind = "pump"
customer_tier = "key"
[assets.physics]
speed_rpm = {SHAFT_RPM}
iso_group = 2
foundation = "rigid"
[[assets.physics.points]]
id = "de_radial"
bearing = {{ n_balls = {balls}, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04 }}
"""
    for asset, gateway, balls in ASSETS
)


def _messages(n_windows: int, commissioning: int) -> list[tuple[str, TelemetryMessage]]:
    """Every asset's windows, 1 s apart and ending now; two assets degrade after commissioning."""
    rng = np.random.default_rng(5)
    start = datetime.now(UTC) - timedelta(seconds=n_windows + 5)
    seqs = {"gw-a": 0, "gw-b": 0}
    out: list[tuple[str, TelemetryMessage]] = []
    for w in range(0, n_windows, 10):
        for gw in ("gw-a", "gw-b"):
            records = []
            for asset in (a for a, g, _ in ASSETS if g == gw):
                for k in range(w, min(w + 10, n_windows)):
                    feats = {n: v * float(np.exp(rng.normal(0, 0.05))) for n, v in HEALTHY.items()}
                    if asset in DEGRADING and k >= commissioning:
                        growth = float(np.exp(0.08 * (k - commissioning)))
                        for name in ("env_bpfo_ms2", "velocity_rms_mms", "kurtosis"):
                            feats[name] *= growth
                    records.append(FeatureRecord(
                        seq=seqs[gw], asset_id=asset, point="de_radial",
                        ts=start + timedelta(seconds=k), window_s=1.0, features=dict(feats),
                    ))
                    seqs[gw] += 1
            out.append((gw, TelemetryMessage(gateway_id=gw, epoch="00000000000e0c02",
                                             seq=records[0].seq, sent_at=datetime.now(UTC),
                                             records=records)))
    return out


def _outer_race_waveform(seconds: float = 2.0, fs: float = 20_000.0) -> np.ndarray:
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


class Gateways:
    """Publishes telemetry for gw-a and gw-b and answers snapshot commands like edge agents."""

    def __init__(self, broker: Mosquitto) -> None:
        self.commands: list[Command] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-gateways")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe([(command_topic("gw-a"), 1), (command_topic("gw-b"), 1)])
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
            samples_f32le_b64=WaveformSnapshot.pack(_outer_race_waveform()),
        )
        client.publish(snapshot_topic(gateway), encode(snapshot), qos=1)

    def publish(self, messages: list[tuple[str, TelemetryMessage]]) -> None:
        for gw, msg in messages:
            self.client.publish(telemetry_topic(gw), encode(msg), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wait(predicate: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"condition not met within {timeout_s} s")


@pytest.fixture
def cloud(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[subprocess.Popen[bytes], int,
                                                                    str, Path]]:
    port = free_port()
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET_TOML)
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "IRONWATCH_CLOUD_ADMIN_TOKEN": token,
           "IRONWATCH_CLOUD_SCORING_INTERVAL_S": "0.5",
           "IRONWATCH_CLOUD_COMMISSIONING_RECORDS": "30"}
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "cloud", "serve", "--port", str(port),
         "--data-dir", str(tmp_path / "data"), "--mqtt-port", str(mosquitto.port),
         "--fleet", str(fleet)],
        stdout=log, stderr=log, env=env,
    )
    try:
        yield proc, port, token, log_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def test_one_asset_failing_diagnosis_leaves_the_fleet_scored_and_health_degraded(
    cloud: tuple[subprocess.Popen[bytes], int, str, Path], mosquitto: Mosquitto,
) -> None:
    proc, port, token, log_path = cloud
    wait_for_port(port, timeout_s=30)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1",
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
    gateways = Gateways(mosquitto)
    try:
        assert api.get("/health").json()["status"] == "ok"
        _wait(lambda: b"connected" in log_path.read_bytes(), 30)
        gateways.publish(_messages(n_windows=80, commissioning=30))

        def settled() -> bool:
            orders = api.get("/work-orders").json()["items"]
            fan = api.get(f"/assets/{FAILING}").json()["scoring"]
            return len(orders) == 2 and fan is not None and fan["failure"] is not None
        _wait(settled, 90)
        time.sleep(2.0)  # a few more rounds: the failure is counted, not logged again
        health = api.get("/health").json()
        alerts = api.get("/alerts").json()["items"]
        orders = api.get("/work-orders").json()["items"]
        assets = {a["id"]: a for a in api.get("/assets").json()["items"]}
    finally:
        gateways.close()
        api.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    log = log_path.read_text()

    # Both degrading machines were asked for a waveform; only one could be diagnosed.
    assert {c.asset_id for c in gateways.commands} == set(DEGRADING)
    model_alerts = [a for a in alerts if a["model"] != "ironwatch.protection"]
    assert [(a["asset_id"], a["failure_mode"]) for a in model_alerts] == [
        ("pump-01", "bearing_outer_race")]
    # The failing machine is far into ISO zone D: the protection rule, which needs no
    # model, still raises its own alert and work order.
    assert [(a["asset_id"], a["failure_mode"], a["severity"]) for a in alerts
            if a["model"] == "ironwatch.protection"] == [
        (FAILING, "excessive_vibration", "critical")]
    assert sorted(o["asset_id"] for o in orders) == [FAILING, "pump-01"]
    # The failing machine: skipped, counted and shown, with what failed and since when.
    failure = assets[FAILING]["scoring"]["failure"]
    assert failure["stage"] == "diagnosis"
    assert failure["error"] == "IndexError: index 793 is out of bounds for axis 0 with size 688"
    assert failure["rounds"] >= 2
    # Everything else is still scored, round after round.
    for other in ("pump-01", "motor-03"):
        scoring = assets[other]["scoring"]
        assert scoring["failure"] is None and scoring["last_scored_at"] is not None
    assert health["status"] == "degraded"
    assert [f["asset_id"] for f in health["scoring"]["failing_assets"]] == [FAILING]
    assert any(FAILING in r and "IndexError" in r for r in health["reasons"])
    # Logged once with its traceback, however many rounds it failed.
    assert log.count(f"scoring {FAILING} failed at diagnosis") == 1
    assert log.count("IndexError: index 793") == 1
