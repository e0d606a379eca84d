"""The gateway's Prometheus metrics: its status counters as series, the exporter port."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeConfig, load_config
from edge_agent.metrics import GatewayCollector
from ironwatch.gateway_counters import GATEWAY_COUNTER_SERIES
from ironwatch_app.local_servers import Mosquitto, free_port

from .conftest import FakeSerial, gateway_toml, wait_until

GW = "gw-metrics"


def _config(tmp_path: Path, broker_port: int, extra: str = "") -> EdgeConfig:
    path = tmp_path / "gw.toml"
    path.write_text(gateway_toml(gateway_id=GW, broker_port=broker_port,
                                 outbox=tmp_path / "ob.db", interval_s=0.2, extra=extra))
    return load_config(path)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_status_counter_is_a_series_of_its_gateway(tmp_path: Path) -> None:
    agent = EdgeAgent(_config(tmp_path, free_port()), serial_factory=lambda _s: FakeSerial())
    try:
        agent.report()  # one interval into the outbox (nothing measured yet: null records)
        registry = CollectorRegistry()
        registry.register(GatewayCollector(agent))
        counters = agent.counters()
        families = {f.name: f for f in registry.collect()}
    finally:
        agent.close()
    for key, series in GATEWAY_COUNTER_SERIES.items():
        if key not in counters:
            continue
        name = series.name.removesuffix("_total")
        assert families[name].type == series.kind, key
        sample = families[name].samples[0]
        assert sample.labels == {"gateway": GW}
        assert sample.value == counters[key], key
    # Every counter the agent reports has a series: a new one needs a row in the table.
    assert set(counters) <= set(GATEWAY_COUNTER_SERIES)
    assert families["ironwatch_gateway_mqtt_connected"].samples[0].value == 0.0
    assert families["ironwatch_gateway_outbox_capacity_records"].samples[0].value == (
        agent.config.outbox.max_records)


def test_metrics_port_must_be_a_port(tmp_path: Path) -> None:
    from edge_agent._errors import ConfigError

    path = tmp_path / "gw.toml"
    path.write_text(gateway_toml(gateway_id=GW, broker_port=1883, outbox=tmp_path / "ob.db",
                                 extra="[metrics]\nport = 70000\n"))
    with pytest.raises(ConfigError, match=r"metrics\.port"):
        load_config(path)
    path.write_text(gateway_toml(gateway_id=GW, broker_port=1883, outbox=tmp_path / "ob.db"))
    assert load_config(path).metrics.port is None  # off by default


@contextmanager
def _running(agent: EdgeAgent) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(20)
        assert not thread.is_alive()


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body: bytes = resp.read()
    return body.decode()


@pytest.mark.integration
def test_exporter_serves_the_running_gateway_and_frees_its_port(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    port = free_port()
    config = _config(tmp_path, mosquitto.port, extra=f"[metrics]\nport = {port}\n")
    agent = EdgeAgent(config, serial_factory=lambda _s: FakeSerial())
    with _running(agent):
        assert wait_until(lambda: agent.counters()["stored"] == 0
                          and agent.counters()["sent"] >= 3, 15)
        samples = _samples(_scrape(port))
        gw = (("gateway", GW),)
        assert samples[("ironwatch_gateway_mqtt_connected", gw)] == 1.0
        assert samples[("ironwatch_gateway_records_sent_total", gw)] >= 3
        assert samples[("ironwatch_gateway_records_produced_total", gw)] >= 3
        # No cloud acknowledges: what was sent waits in the outbox for the cloud.
        assert samples[("ironwatch_gateway_outbox_awaiting_cloud_records", gw)] >= 3
        assert samples[("ironwatch_gateway_outbox_dropped_records_total", gw)] == 0
        # The process's own CPU and memory come with it.
        assert samples[("process_resident_memory_bytes", ())] > 0
    with socket.socket() as s:
        # Nobody listens there any more (SO_REUSEADDR: the scrape's TIME_WAIT does not count).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
    with pytest.raises(urllib.error.URLError):
        _scrape(port)


@pytest.mark.integration
def test_a_port_in_use_is_logged_and_the_gateway_runs_on(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = _config(tmp_path, mosquitto.port, extra=f"[metrics]\nport = {port}\n")
        agent = EdgeAgent(config, serial_factory=lambda _s: FakeSerial())
        with _running(agent):
            assert wait_until(lambda: agent.counters()["sent"] >= 2, 15)
    assert any("metrics exporter not started" in r.getMessage() for r in caplog.records)
