"""The composed cloud: a real broker, ingestion, scoring and the REST API in one app.

Also `ironwatch cloud serve` as a real process: it answers /api/v1/health and exits 0
on SIGTERM, leaving its port free.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from cloud.app import create_app
from cloud.settings import CloudSettings
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

with warnings.catch_warnings():
    # Starlette deprecates httpx for its test client in favour of httpx2, which the pinned
    # dev dependencies do not include yet.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

# The installed entry point, as an operator runs it.
IRONWATCH = str(Path(sys.executable).parent / "ironwatch")

ASSETS = ("pump-01", "fan-02", "motor-03")
SHAFT_RPM = 1480.0
BEARING = BearingGeometry(n_balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04)
DEGRADING = "pump-01"
HEALTHY = {
    "accel_rms_ms2": 2.0, "accel_peak_ms2": 7.0, "crest_factor": 3.5, "kurtosis": 3.0,
    "velocity_rms_mms": 1.2, "env_bpfo_ms2": 0.05, "env_bpfi_ms2": 0.05,
    "env_bsf_ms2": 0.04, "env_ftf_ms2": 0.03, "order_1x_ms2": 0.8, "order_2x_ms2": 0.3,
}
FLEET_TOML = """
[[gateways]]
id = "gw-a"

[[gateways]]
id = "gw-b"
""" + "".join(
    f"""
[[assets]]
id = "{a}"
gateway_id = "{'gw-a' if i < 2 else 'gw-b'}"
kind = "pump"
customer_tier = "key"
[assets.physics]
speed_rpm = 1480.0
iso_group = 2
foundation = "rigid"
[[assets.physics.points]]
id = "de_radial"
bearing = {{ n_balls = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04 }}
"""
    for i, a in enumerate(ASSETS)
)


def _messages(n_windows: int, commissioning: int) -> list[tuple[str, TelemetryMessage]]:
    """Every asset's windows, 1 s apart and ending now; pump-01 degrades after commissioning."""
    rng = np.random.default_rng(3)
    start = datetime.now(UTC) - timedelta(seconds=n_windows + 5)
    seqs = {"gw-a": 0, "gw-b": 0}
    out: list[tuple[str, TelemetryMessage]] = []
    for w in range(0, n_windows, 10):
        for gw in ("gw-a", "gw-b"):
            records = []
            for asset in (ASSETS[:2] if gw == "gw-a" else ASSETS[2:]):
                for k in range(w, min(w + 10, n_windows)):
                    feats = {n: v * float(np.exp(rng.normal(0, 0.05))) for n, v in HEALTHY.items()}
                    if asset == DEGRADING and k >= commissioning:
                        growth = float(np.exp(0.08 * (k - commissioning)))
                        for name in ("env_bpfo_ms2", "velocity_rms_mms", "kurtosis"):
                            feats[name] *= growth
                    records.append(FeatureRecord(
                        seq=seqs[gw], asset_id=asset, point="de_radial",
                        ts=start + timedelta(seconds=k), window_s=1.0, features={**feats},
                    ))
                    seqs[gw] += 1
            out.append((gw, TelemetryMessage(gateway_id=gw, epoch="00000000000e0c01",
                                             seq=records[0].seq,
                                             sent_at=datetime.now(UTC), records=records)))
    return out


def outer_race_waveform(seconds: float = 2.0, fs: float = 20_000.0) -> np.ndarray:
    """Acceleration of a bearing with an outer-race defect: impacts at BPFO ring a resonance."""
    rng = np.random.default_rng(1)
    shaft_hz = SHAFT_RPM / 60.0
    bpfo_hz = BEARING.defect_frequencies(shaft_hz).bpfo
    t = np.arange(int(fs * seconds)) / fs
    x = 0.3 * rng.normal(size=t.size) + 0.5 * np.sin(2 * np.pi * shaft_hz * t)
    ring = 3.0 * np.exp(-t[:400] * 800) * np.sin(2 * np.pi * 3000.0 * t[:400])
    for start in (np.arange(0.0, seconds, 1.0 / bpfo_hz) * fs).astype(int):
        seg = x[start:start + 400]
        seg += ring[: seg.size]
    return x


class FakeGateway:
    """Publishes telemetry for its gateways and answers snapshot commands like an edge agent."""

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
            gateway_id=gateway, seq=0, sent_at=datetime.now(UTC),
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


def _wait(predicate: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"condition not met within {timeout_s} s")


@pytest.fixture
def settings(tmp_path: Path, mosquitto: Mosquitto) -> CloudSettings:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET_TOML)
    return CloudSettings(
        data_dir=tmp_path / "data",
        mqtt_host=mosquitto.host,
        mqtt_port=mosquitto.port,
        mqtt_client_id="cloud-test",
        admin_token=SecretStr(secrets.token_urlsafe(24)),
        scoring_interval_s=0.5,
        commissioning_records=30,
        fleet_file=fleet,
    )


def test_degrading_asset_gets_an_alert_and_a_work_order(
    settings: CloudSettings, mosquitto: Mosquitto
) -> None:
    assert settings.admin_token is not None
    headers = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
    app = create_app(settings)
    gateways = FakeGateway(mosquitto)
    try:
        with TestClient(app) as client:
            assert client.get("/api/v1/health").json()["status"] == "ok"
            services = app.state.ironwatch_services
            _wait(lambda: services.ingest.connected, 20)
            gateways.publish(_messages(n_windows=80, commissioning=30))

            def work_orders() -> list[dict[str, Any]]:
                items: list[dict[str, Any]] = client.get(
                    "/api/v1/work-orders", headers=headers).json()["items"]
                return items

            orders = _wait(work_orders, 60)
            alerts = client.get("/api/v1/alerts", headers=headers).json()["items"]
            state = services.pipeline.state
    finally:
        gateways.close()
    assert len(alerts) == 1 and alerts[0]["asset_id"] == DEGRADING
    alert = alerts[0]
    # The pipeline asked the pump's gateway for a waveform and diagnosed it.
    assert [c.asset_id for c in gateways.commands] == [DEGRADING]
    assert alert["failure_mode"] == "bearing_outer_race"
    assert alert["severity"] in ("warning", "alarm", "critical")
    assert alert["evidence"]["persistence"]["over_threshold"] >= 3
    moved = {m["feature"] for m in alert["evidence"]["moved_features"]}
    assert {"env_bpfo_ms2", "velocity_rms_mms", "kurtosis"} <= moved
    assert [o["asset_id"] for o in orders] == [DEGRADING]
    order = orders[0]
    assert order["priority"] in ("P0", "P1", "P2")
    assert datetime.fromisoformat(order["respond_by"]) > datetime.fromisoformat(
        order["created_at"])
    # Commissioning happened once per asset, on its own first records.
    assert sorted(k for k, v in state.keys.items() if v.commissioned_at_s) == [
        f"{a}/de_radial" for a in sorted(ASSETS)]
    assert state.baseline.version == 1
    # Lifespan over: ingestion, scoring and escalation threads are gone.
    names = {t.name for t in threading.enumerate()}
    assert not names & {"ironwatch-scoring", "ironwatch-escalations", "ingest-cloud-test"}


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def serve_process(
    tmp_path: Path, mosquitto: Mosquitto
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET_TOML)
    env = {**os.environ, "IRONWATCH_CLOUD_ADMIN_TOKEN": secrets.token_urlsafe(24)}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [IRONWATCH, "cloud", "serve", "--port", str(port),
         "--data-dir", str(tmp_path / "data"), "--mqtt-port", str(mosquitto.port),
         "--fleet", str(fleet)],
        stdout=log, stderr=log, env=env,
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def test_serve_answers_health_and_exits_cleanly_on_sigterm(
    serve_process: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = serve_process
    wait_for_port(port, timeout_s=30)
    response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
    assert response.status_code == 200 and response.json()["status"] == "ok"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert _port_free(port)


def test_serve_rejects_bad_config_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [IRONWATCH, "cloud", "serve", "--fleet",
         str(tmp_path / "missing.toml"), "--data-dir", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=60,
        env={**os.environ, "IRONWATCH_CLOUD_ADMIN_TOKEN": "changeme"},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ironwatch: error: invalid cloud setting")


def test_ingest_workers_share_one_stream(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Two `ironwatch cloud ingest` workers in one shared-subscription group store it all once."""
    from cloud.telemetry import SqliteTelemetryStore

    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET_TOML)
    data = tmp_path / "data"
    subprocess.run([IRONWATCH, "cloud", "migrate", "--data-dir", str(data)], check=True,
                   capture_output=True, timeout=60)
    env = {**os.environ, "IRONWATCH_CLOUD_FLEET_FILE": str(fleet)}
    logs = [tmp_path / f"ingest-{i}.log" for i in range(2)]
    workers = []
    for i, log in enumerate(logs):
        with log.open("wb") as err:
            workers.append(subprocess.Popen(
                [IRONWATCH, "cloud", "ingest", "--data-dir", str(data), "--mqtt-port",
                 str(mosquitto.port), "--shared-group", "ironwatch", "--client-id",
                 f"ingest-{i}"],
                stdout=subprocess.DEVNULL, stderr=err, env=env,
            ))
    gateways = FakeGateway(mosquitto)
    try:
        # Both workers subscribed (and handling signals) before anything is published.
        _wait(lambda: all(b"connected" in log.read_bytes() for log in logs), 60)
        messages = _messages(n_windows=20, commissioning=30)
        store = SqliteTelemetryStore(data / "telemetry.db")
        try:
            def stored() -> bool:
                gateways.publish(messages)  # repeats are deduplicated by (gateway, seq)
                return store.count() == 60
            _wait(stored, 45)
            assert store.duplicate_count() >= 0
        finally:
            store.close()
        for w in workers:
            w.send_signal(signal.SIGTERM)
        assert [w.wait(20) for w in workers] == [0, 0]
    finally:
        gateways.close()
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(10)
