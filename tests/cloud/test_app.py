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
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from cloud.app import create_app
from cloud.settings import CloudSettings
from ironwatch.wire import (
    TelemetryMessage,
)
from ironwatch_app.local_servers import Mosquitto, free_port, wait_for_port
from ironwatch_testing.cloud_fleet import SnapshotGateways, fleet_messages, wait_for

with warnings.catch_warnings():
    # Starlette deprecates httpx for its test client in favour of httpx2, which the pinned
    # dev dependencies do not include yet.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

# The installed entry point, as an operator runs it.
IRONWATCH = str(Path(sys.executable).parent / "ironwatch")

ASSETS = ("pump-01", "fan-02", "motor-03")
DEGRADING = "pump-01"
GATEWAY_OF = {a: "gw-a" if i < 2 else "gw-b" for i, a in enumerate(ASSETS)}


def _messages(n_windows: int, commissioning: int) -> list[tuple[str, TelemetryMessage]]:
    """Every asset's windows, 1 s apart and ending now; pump-01 degrades after commissioning."""
    return fleet_messages(GATEWAY_OF, {DEGRADING}, n_windows, commissioning, seed=3,
                          epoch="00000000000e0c01")
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
    gateways = SnapshotGateways(mosquitto.host, mosquitto.port, ("gw-a", "gw-b"))
    try:
        with TestClient(app) as client:
            assert client.get("/api/v1/health").json()["status"] == "ok"
            services = app.state.ironwatch_services
            wait_for(lambda: services.ingest.connected, 20)
            gateways.publish(_messages(n_windows=80, commissioning=30))

            def work_orders() -> list[dict[str, Any]]:
                items: list[dict[str, Any]] = client.get(
                    "/api/v1/work-orders", headers=headers).json()["items"]
                return items

            orders = wait_for(work_orders, 60)
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
    gateways = SnapshotGateways(mosquitto.host, mosquitto.port, ("gw-a", "gw-b"))
    try:
        # Both workers subscribed (and handling signals) before anything is published.
        wait_for(lambda: all(b"connected" in log.read_bytes() for log in logs), 60)
        messages = _messages(n_windows=20, commissioning=30)
        store = SqliteTelemetryStore(data / "telemetry.db")
        try:
            def stored() -> bool:
                gateways.publish(messages)  # repeats are deduplicated by (gateway, seq)
                return store.count() == 60
            wait_for(stored, 45)
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
