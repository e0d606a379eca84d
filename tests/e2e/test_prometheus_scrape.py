"""A real Prometheus scrapes every Ironwatch process while real telemetry flows.

A simulated Modbus transmitter feeds a gateway (`ironwatch edge run`, metrics port on),
which publishes through a real Mosquitto to `ironwatch cloud serve` (API, ingestion,
scoring; /metrics behind a token) and a standalone `ironwatch cloud ingest` worker
(exporter port) sharing the stream. Debian's Prometheus scrapes the three every two seconds;
the test asks Prometheus's HTTP API for the key series and runs every dashboard query.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ironwatch_app.local_servers import (
    Mosquitto,
    Prometheus,
    free_ports,
    stop_process,
    wait_for_port,
)
from ironwatch_testing.cloud_fleet import wait_for
from ironwatch_testing.grafana import dashboard_expressions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IRONWATCH = str(Path(sys.executable).parent / "ironwatch")
GW = "gw-prom"
ASSET = "pump-01"

FLEET = f"""
[[gateways]]
id = "{GW}"

[[assets]]
id = "{ASSET}"
gateway_id = "{GW}"
kind = "pump"
"""


def _gateway_toml(tmp: Path, broker: int, modbus: int, metrics: int) -> str:
    return f"""
gateway_id = "{GW}"
reporting_interval_s = 0.5

[mqtt]
host = "127.0.0.1"
port = {broker}
status_interval_s = 1

[outbox]
path = "{tmp / 'outbox.db'}"

[metrics]
port = {metrics}

[[assets]]
asset_id = "{ASSET}"
speed_rpm = 1480
[[assets.points]]
id = "de"

[[modbus]]
transport = "tcp"
host = "127.0.0.1"
port = {modbus}
profile = "generic_vibration_transmitter"
asset_id = "{ASSET}"
point = "de"
poll_interval_s = 0.25
"""


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start a process with its output in a log file; all are stopped by PID at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, args: list[str], env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=log,
                                    env={**os.environ, **(env or {})})
        procs.append(proc)
        return proc

    yield start
    for proc in reversed(procs):
        stop_process(proc, timeout_s=15)


def _logs(tmp_path: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:])
        for p in sorted(tmp_path.glob("*.log")))


def test_prometheus_scrapes_gateway_ingest_worker_and_cloud(
    tmp_path: Path, mosquitto: Mosquitto, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    http, ingest_metrics, gw_metrics, modbus = free_ports(4)
    token = secrets.token_urlsafe(24)
    data = tmp_path / "data"
    (tmp_path / "fleet.toml").write_text(FLEET)
    (tmp_path / "gw.toml").write_text(_gateway_toml(tmp_path, mosquitto.port, modbus, gw_metrics))
    cloud_env = {
        "IRONWATCH_CLOUD_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "IRONWATCH_CLOUD_METRICS_TOKEN": token,
        "IRONWATCH_CLOUD_SCORING_INTERVAL_S": "0.5",
        "IRONWATCH_CLOUD_COMMISSIONING_RECORDS": "5",
        "IRONWATCH_CLOUD_MQTT_SHARED_GROUP": "ironwatch",
        "IRONWATCH_CLOUD_FLEET_FILE": str(tmp_path / "fleet.toml"),
    }
    subprocess.run([IRONWATCH, "cloud", "migrate", "--data-dir", str(data)], check=True,
                   capture_output=True, timeout=60, env={**os.environ, **cloud_env})
    serve = spawn("serve", [IRONWATCH, "cloud", "serve", "--port", str(http), "--data-dir",
                            str(data), "--mqtt-port", str(mosquitto.port)], cloud_env)
    ingest = spawn("ingest", [IRONWATCH, "cloud", "ingest", "--data-dir", str(data),
                              "--mqtt-port", str(mosquitto.port), "--client-id", "ingest-1",
                              "--metrics-port", str(ingest_metrics)], cloud_env)
    spawn("modbus", [IRONWATCH, "sim", "modbus", "--tcp-port", str(modbus), "--profile",
                     "generic_vibration_transmitter", "--machine-id", ASSET])
    for port in (http, ingest_metrics, modbus):
        wait_for_port(port, timeout_s=60)
    gateway = spawn("gateway", [IRONWATCH, "edge", "run", "--config", str(tmp_path / "gw.toml")])
    wait_for_port(gw_metrics, timeout_s=60)
    for _ in range(3):
        assert httpx.get(f"http://127.0.0.1:{http}/api/v1/health", timeout=10).status_code == 200

    with Prometheus(
        workdir=tmp_path / "prometheus",
        targets={"cloud": [f"127.0.0.1:{http}"], "ingest": [f"127.0.0.1:{ingest_metrics}"],
                 "gateway": [f"127.0.0.1:{gw_metrics}"]},
        bearer_tokens={"cloud": token},
        # A busy two-core machine can take over a second to answer a scrape.
        scrape_interval_s=2.0,
    ) as prom:

        def value(promql: str) -> float | None:
            result = prom.query(promql)
            return float(str(result[0]["value"][1])) if result else None  # type: ignore[index]

        def above(promql: str, floor: float = 0.0) -> bool:
            v = value(promql)
            return v is not None and v > floor

        try:
            # Every target scraped and up.
            wait_for(lambda: value("count(up == 1)") == 3, 90)
            # Real records through the real broker, stored by the service and the worker.
            wait_for(lambda: above("sum(ironwatch_ingest_records_stored_total)"), 90)
            wait_for(lambda: above('ironwatch_ingest_records_stored_total{job="ingest"}')
                     and above('ironwatch_ingest_records_stored_total{job="cloud"}'), 90)
            # Scoring commissions the asset (5 records) and scores it.
            wait_for(lambda: above('ironwatch_scoring_assets_scored_total{job="cloud"}'), 120)
            # The cloud re-exports the gateway's status counters; the gateway exports its own.
            wait_for(lambda: above(f'ironwatch_gateway_records_sent_total{{job="cloud",'
                                   f'gateway="{GW}"}}'), 60)
            # A rate needs two scrapes with records in between.
            wait_for(lambda: above("sum(rate(ironwatch_ingest_records_stored_total[1m]))"), 60)
        except AssertionError:
            raise AssertionError(_logs(tmp_path)) from None

        gw = f'job="gateway",gateway="{GW}"'
        checks: list[tuple[str, Callable[[float], bool]]] = [
            ('min(up{job="gateway"})', lambda v: v == 1),
            ('ironwatch_scoring_round_duration_seconds_count{job="cloud"}', lambda v: v > 0),
            ('ironwatch_scoring_round_duration_seconds_sum{job="cloud"}', lambda v: v > 0),
            ('ironwatch_scoring_rounds_total{job="cloud",outcome="completed"}', lambda v: v > 0),
            (f"ironwatch_gateway_outbox_unsent_records{{{gw}}}", lambda v: v >= 0),
            (f"ironwatch_gateway_outbox_awaiting_cloud_records{{{gw}}}", lambda v: v >= 0),
            (f"ironwatch_gateway_outbox_dropped_records_total{{{gw}}}", lambda v: v == 0),
            # The cloud's stored-acks reach the gateway: records leave its outbox.
            (f"ironwatch_gateway_records_stored_total{{{gw}}}", lambda v: v > 0),
            (f"ironwatch_gateway_mqtt_connected{{{gw}}}", lambda v: v == 1),
            ('sum(ironwatch_http_request_duration_seconds_count{job="cloud",'
             'route="/api/v1/health",status="2xx"})', lambda v: v >= 3),
            ('ironwatch_ingest_connected{job="ingest"}', lambda v: v == 1),
            ('sum(ironwatch_mqtt_messages_received_total{kind="telemetry"})', lambda v: v > 0),
            # Capture to stored: the 0.5 s reporting interval plus transport, not minutes.
            ("histogram_quantile(0.5, sum by (le) (ironwatch_ingest_lag_seconds_bucket))",
             lambda v: 0 < v <= 10),
            # Fleet state from the database (a young baseline may raise an alert: any count).
            ('ironwatch_alerts{job="cloud",state="open"}', lambda v: v >= 0),
            ('ironwatch_work_orders{job="cloud",state="open"}', lambda v: v >= 0),
            ('ironwatch_gateways{job="cloud",state="online"}', lambda v: v == 1),
            ("count(process_resident_memory_bytes > 0)", lambda v: v == 3),
        ]

        def failing() -> list[str]:
            out = []
            for promql, ok in checks:
                v = value(promql)
                if v is None or not ok(v):
                    out.append(f"{promql} = {v}")
            return out

        try:
            wait_for(lambda: not failing(), 60)
        except AssertionError:
            raise AssertionError(f"{failing()}\n{_logs(tmp_path)}") from None

        # Every dashboard query is valid PromQL to this Prometheus; the key panels have data.
        key_panels = ("Records stored per second / A", "Ingest lag (capture to stored) / B",
                      "Scoring round duration / A", "Outbox depth / A",
                      "Request latency p99 by route / A", "Targets up / A")

        def empty_panels() -> list[str]:
            answers = {where: prom.query(expr) for where, expr in dashboard_expressions()}
            return [panel for panel in key_panels if not answers[panel]]

        try:
            wait_for(lambda: not empty_panels(), 60)
        except AssertionError:
            raise AssertionError(f"no data: {empty_panels()}\n{_logs(tmp_path)}") from None

    # Every process stops cleanly on SIGTERM.
    for proc in (gateway, ingest, serve):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, _logs(tmp_path)
