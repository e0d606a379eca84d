"""Ingestion in processes of its own: two workers share the stream, a killed one comes back."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from prometheus_client import REGISTRY

from cloud.app import CloudServices, run_ingest_process
from cloud.ingest_processes import IngestProcesses
from cloud.settings import CloudSettings
from ironwatch_app.local_servers import Mosquitto
from ironwatch_testing.ingest import Publisher, make_records, make_telemetry

pytestmark = pytest.mark.integration

GATEWAYS = [f"gw-{i}" for i in range(6)]
FLEET = "".join(f'[[gateways]]\nid = "{g}"\n\n[[assets]]\nid = "{g}-a"\ngateway_id = "{g}"\n\n'
                for g in GATEWAYS)
T0 = datetime.now(UTC) - timedelta(days=1)


def wait_for(predicate: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return value


@pytest.fixture
def services(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[CloudServices]:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET)
    settings = CloudSettings(data_dir=tmp_path / "data", mqtt_host=mosquitto.host,
                             mqtt_port=mosquitto.port, mqtt_client_id="cloud-procs",
                             fleet_file=fleet)
    s = CloudServices.open(settings)  # migrates and seeds, as `cloud serve` does first
    yield s
    s.close()


def _publish(pub: Publisher, first_seq: int, n: int) -> int:
    return pub.publish_telemetry(
        make_telemetry(g, make_records(first_seq + k * 10, 10, assets=(f"{g}-a",), t0=T0))
        for g in GATEWAYS for k in range(n))


def test_two_worker_processes_share_the_stream_and_a_killed_one_is_restarted(
    services: CloudServices, mosquitto: Mosquitto,
) -> None:
    def stored_series() -> float:
        return REGISTRY.get_sample_value("ironwatch_ingest_records_stored_total",
                                         {"store": "sqlite"}) or 0.0

    before = stored_series()
    procs = IngestProcesses(services.settings, 2, run_ingest_process)
    procs.start()
    try:
        wait_for(lambda: procs.connected)
        first = procs.pids
        assert len(set(first)) == 2 and os.getpid() not in first
        with Publisher(mosquitto.host, mosquitto.port) as pub:
            sent = _publish(pub, 0, 10)
            wait_for(lambda: services.store.count() == sent)
            stats = procs.stats
            assert (stats.stored, stats.workers, stats.duplicates) == (sent, 2, 0)
            assert all(w.stored > 0 for w in procs.worker_stats)  # both took a share
            # The workers' metrics are in this (the service's) process's registry.
            assert stored_series() - before == sent

            assert first[0] is not None
            os.kill(first[0], signal.SIGKILL)  # a crash: nothing is asked to stop
            wait_for(lambda: procs.stats.worker_restarts == 1 and procs.connected)
            assert procs.pids[0] not in (None, first[0]) and procs.pids[1] == first[1]
            more = _publish(pub, 1000, 10)
            wait_for(lambda: services.store.count() == sent + more)
        assert services.store.duplicate_count() == 0
        assert procs.stats.stored >= sent + more  # earlier incarnations still counted
    finally:
        pids = [p for p in procs.pids if p is not None]
        procs.stop()
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                   for p in pids)


def _ingest_children(pid: int) -> list[psutil.Process]:
    return [c for c in psutil.Process(pid).children()
            if "spawn_main" in " ".join(c.cmdline())]


def _gone(procs: list[psutil.Process], timeout_s: float) -> bool:
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    return not alive


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_serve_runs_ingest_processes_that_end_with_the_service(
    tmp_path: Path, mosquitto: Mosquitto, stop: signal.Signals,
) -> None:
    import subprocess
    import sys

    from ironwatch_app.local_servers import free_port, wait_for_port

    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET)
    port = free_port()
    env = {**os.environ, "IRONWATCH_CLOUD_ADMIN_TOKEN": secrets.token_urlsafe(24)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "ironwatch_app.cli", "cloud", "serve", "--port", str(port),
         "--data-dir", str(tmp_path / "data"), "--mqtt-port", str(mosquitto.port),
         "--fleet", str(fleet), "--ingest-workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for_port(port, timeout_s=60)
        children = wait_for(lambda: (c := _ingest_children(serve.pid)) and len(c) == 2 and c)
        serve.send_signal(stop)
        if stop == signal.SIGTERM:
            assert serve.wait(30) == 0
        # Killed outright, the service cannot stop them: each sees its pipe close and ends.
        assert _gone(children, 20)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(10)
