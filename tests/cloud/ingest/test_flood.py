"""A flood of large invalid messages against `ironwatch cloud serve`: memory stays bounded.

The cloud runs as an operator runs it (its own process, real Mosquitto); its resident memory
is sampled with psutil while a gateway account publishes ~330 MB of garbage, some of it over
the payload limit. Afterwards every message is dead-lettered and another gateway's records
are stored.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from cloud.telemetry import SqliteTelemetryStore
from ironwatch.wire import telemetry_topic
from ironwatch_app.local_servers import Mosquitto, free_port
from ironwatch_testing.ingest import Publisher, make_records, make_telemetry

pytestmark = pytest.mark.integration

IRONWATCH = str(Path(sys.executable).parent / "ironwatch")
FLEET_TOML = """
[[gateways]]
id = "gw-a"

[[gateways]]
id = "gw-b"

[[assets]]
id = "motor-03"
gateway_id = "gw-b"
"""
MIB = 1024 * 1024
RSS_LIMIT_MB = 400


def _wait(predicate: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s} s")


def test_memory_stays_bounded_under_a_flood_of_large_invalid_messages(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET_TOML)
    token = secrets.token_urlsafe(24)
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [IRONWATCH, "cloud", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
         "--mqtt-port", str(mosquitto.port), "--fleet", str(fleet)],
        stdout=log, stderr=log, env={**os.environ, "IRONWATCH_CLOUD_ADMIN_TOKEN": token},
    )
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
    try:
        def stats() -> dict[str, Any]:
            return dict(api.get("/api/v1/ingest/stats").json()["stats"])

        _wait(lambda: stats().get("connected"), 60)
        cloud = psutil.Process(proc.pid)
        baseline_mb = cloud.memory_info().rss / MIB
        peak_mb = baseline_mb
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_mb
            while not done.wait(0.02):
                peak_mb = max(peak_mb, cloud.memory_info().rss / MIB)

        sampler = threading.Thread(target=sample)
        sampler.start()
        garbage = [(b'{"v": 1, "type": "telemetry", "records": [' + os.urandom(MIB // 2).hex()
                    .encode())] * 150  # 1 MiB each: parsed and refused
        huge = [b"\x00" * (6 * MIB)] * 30  # over the 4 MiB limit: refused unparsed
        started = time.monotonic()
        with Publisher(mosquitto.host, mosquitto.port) as pub:
            infos = [pub.publish(telemetry_topic("gw-a"), p) for p in garbage + huge]
            for info in infos:
                info.wait_for_publish(60)
            pub.publish_telemetry([make_telemetry("gw-b", make_records(
                i, 10, assets=("motor-03",))) for i in range(0, 50, 10)])
        _wait(lambda: api.get("/api/v1/dead-letters?limit=1").json()["total"] == 180, 120)
        flood_s = time.monotonic() - started
        store = SqliteTelemetryStore(tmp_path / "data" / "telemetry.db")
        try:
            _wait(lambda: store.count(gateway_id="gw-b") == 50, 30)
        finally:
            store.close()
        done.set()
        sampler.join()
        s = stats()
        assert s["dead_lettered"] == {"invalid_payload": 150, "too_large": 30}
        letters = api.get("/api/v1/dead-letters?reason=too_large&limit=1").json()
        assert letters["total"] == 30
        assert letters["items"][0]["payload_size"] == 6 * MIB
        assert letters["items"][0]["payload_truncated"] is True
        print(f"\nflood of {len(garbage) + len(huge)} messages (330 MiB) handled in "
              f"{flood_s:.1f} s: cloud RSS {baseline_mb:.0f} MB before, peak {peak_mb:.0f} MB; "
              "gw-b's 50 records stored, 0 lost")
        assert peak_mb < RSS_LIMIT_MB
    finally:
        api.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        log.close()
