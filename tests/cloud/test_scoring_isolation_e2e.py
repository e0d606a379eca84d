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
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ironwatch_app.local_servers import Mosquitto, free_port, wait_for_port
from ironwatch_testing.cloud_fleet import SHAFT_RPM, SnapshotGateways, fleet_messages, wait_for

pytestmark = pytest.mark.integration

LAUNCHER = Path(__file__).parent / "hooks" / "serve_with_failing_diagnosis.py"
# (asset, gateway, balls): the launcher makes diagnosis raise for 13-ball bearings.
ASSETS = (("pump-01", "gw-a", 9), ("fan-02", "gw-b", 13), ("motor-03", "gw-a", 9))
DEGRADING = ("pump-01", "fan-02")
FAILING = "fan-02"
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
    gateways = SnapshotGateways(mosquitto.host, mosquitto.port, ("gw-a", "gw-b"))
    try:
        assert api.get("/health").json()["status"] == "ok"
        wait_for(lambda: b"connected" in log_path.read_bytes(), 30)
        gateways.publish(fleet_messages(
            {a: g for a, g, _ in ASSETS}, DEGRADING, n_windows=80, commissioning=30,
            seed=5, epoch="00000000000e0c02"))

        def settled() -> bool:
            orders = api.get("/work-orders").json()["items"]
            fan = api.get(f"/assets/{FAILING}").json()["scoring"]
            return len(orders) == 2 and fan is not None and fan["failure"] is not None
        wait_for(settled, 90)
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
