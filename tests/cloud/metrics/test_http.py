"""`GET /metrics` on the service (who may read it), request latency by route template, and
the exporter port of workers without HTTP."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError

from cloud.app import create_app
from cloud.metrics import MetricsExporter
from cloud.settings import CloudSettings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

TOKEN = secrets.token_urlsafe(24)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def open_app(tmp_path: Path) -> Iterator[FastAPI]:
    yield create_app(CloudSettings(data_dir=tmp_path), ingest=False, scoring=False)


@pytest.fixture
def token_app(tmp_path: Path) -> Iterator[FastAPI]:
    yield create_app(CloudSettings(data_dir=tmp_path, metrics_token=SecretStr(TOKEN)),
                     ingest=False, scoring=False)


def test_without_a_token_only_loopback_reads_metrics(open_app: FastAPI) -> None:
    with TestClient(open_app) as remote:  # the test client's peer is "testclient"
        response = remote.get("/metrics")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        assert "metrics_token" in response.json()["error"]["message"]
    with TestClient(open_app, client=("127.0.0.1", 40000)) as local:
        response = local.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.text)
    # Fleet state from the database is in the same answer.
    assert samples[("ironwatch_alerts", (("state", "open"),))] == 0


def test_with_a_token_it_is_required_from_everyone(token_app: FastAPI) -> None:
    with TestClient(token_app, client=("127.0.0.1", 40000)) as client:
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 32})
        right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert right.status_code == 200
    with TestClient(token_app) as remote:
        response = remote.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}",
                                                    "Accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_a_weak_metrics_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="metrics_token"):
        CloudSettings(data_dir=tmp_path, metrics_token=SecretStr("changeme"))


def test_latency_is_labelled_by_route_template_never_by_path(token_app: FastAPI) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(token_app) as client:
        for _ in range(3):
            assert client.get("/api/v1/health").status_code == 200
        # The metrics token is not an API token: 401, still labelled by the template.
        assert client.get("/api/v1/assets/pump-secret-42", headers=auth).status_code == 401
        assert client.get("/no/such/page-77").status_code == 404
        text = client.get("/metrics", headers=auth).text
    samples = _samples(text)
    count = "ironwatch_http_request_duration_seconds_count"

    def n(route: str, status: str) -> float:
        return samples.get((count, (("method", "GET"), ("route", route), ("status", status))), 0)

    assert n("/api/v1/health", "2xx") >= 3
    assert n("/api/v1/assets/{asset_id}", "4xx") >= 1
    assert n("<unmatched>", "4xx") >= 1
    assert "pump-secret-42" not in text and "page-77" not in text


def test_exporter_port_serves_the_registry_and_is_freed() -> None:
    exporter = MetricsExporter("127.0.0.1", 0)
    port = exporter.port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        exporter.stop()
    assert ("ironwatch_build_info", (("version", "0.1.0"),)) in _samples(text)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_ingest_worker_with_its_metrics_port_taken_stops_in_one_line(tmp_path: Path) -> None:
    ironwatch = str(Path(sys.executable).parent / "ironwatch")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [ironwatch, "cloud", "ingest", "--data-dir", str(tmp_path), "--mqtt-port", "1",
             "--metrics-port", str(port)],
            capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ),
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"ironwatch: error: metrics port 127.0.0.1:{port}: Address already in use")
