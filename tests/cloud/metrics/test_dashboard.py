"""The Grafana dashboard in docs/grafana: valid JSON, on a Prometheus datasource variable, and
every expression real PromQL over series that exist (names checked against the registry,
syntax by promtool when it is installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.core import Metric

from cloud import metrics
from cloud.db import Gateway, make_engine, make_session_factory, upgrade
from cloud.pipeline import ScoringHealth
from edge_agent.config import EdgeConfig
from edge_agent.metrics import GatewayCollector
from ironwatch.gateway_counters import GATEWAY_COUNTER_SERIES
from ironwatch_testing.grafana import dashboard, dashboard_expressions

NAME = re.compile(r"\b((?:ironwatch|process)_[a-z0-9_]+|up)\b(?!\s*\()")


def expressions() -> list[tuple[str, str]]:
    return dashboard_expressions()


def test_dashboard_is_valid_json_on_a_prometheus_datasource_variable() -> None:
    data = dashboard()
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = [p for p in data["panels"] if p["type"] != "row"]
    assert len(panels) >= 20
    assert len({p["id"] for p in data["panels"]}) == len(data["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
    # Every target has an expression, with no variable Grafana would not fill in.
    for where, expr in expressions():
        assert expr.strip() and "$" not in expr, where


@dataclass
class _Stats:
    connected: bool = True
    duplicates: int = 0
    records_received: int = 0
    store_errors: int = 0


@dataclass
class _Worker:
    stats: _Stats = field(default_factory=_Stats)


@dataclass
class _Publisher:
    connected: bool = True


@dataclass
class _Agent:
    config: EdgeConfig
    publisher: _Publisher = field(default_factory=_Publisher)

    def counters(self) -> dict[str, int]:
        return dict.fromkeys(GATEWAY_COUNTER_SERIES, 1)


@pytest.fixture
def every_series(tmp_path: Path) -> Iterator[set[str]]:
    """Sample names of a registry where every source has something to say."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    with factory() as session:
        session.add(Gateway(id="gw-1", state="online", last_seen=now,
                            status={"counters": dict.fromkeys(GATEWAY_COUNTER_SERIES, 1)}))
        session.commit()
    health = ScoringHealth(1.0)
    health.failed("a-1", "anomaly", ValueError("x"), now)
    health.round_completed(now)
    attached = [
        metrics.SOURCES.attach("database", metrics.database_source(factory)),
        metrics.SOURCES.attach("scoring", metrics.scoring_source(health)),
        metrics.SOURCES.attach("ingest:test", metrics.ingest_source(_Worker())),
    ]
    config = EdgeConfig.model_validate({
        "gateway_id": "gw-1",
        "assets": [{"asset_id": "a-1", "speed_rpm": 1480, "points": [{"id": "de"}]}],
        "modbus": [{"host": "127.0.0.1", "profile": "generic_vibration_transmitter",
                    "asset_id": "a-1", "point": "de"}],
    })
    gateway = GatewayCollector(_Agent(config))
    REGISTRY.register(gateway)
    try:
        yield {name for family in REGISTRY.collect() for name in _sample_names(family)} | {"up"}
    finally:
        REGISTRY.unregister(gateway)
        for a in attached:
            a.stop()
        engine.dispose()


def _sample_names(family: Metric) -> set[str]:
    """The series a family exposes, also before a labelled one has its first child."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "summary": ("", "_sum", "_count")}.get(family.type, ("",))
    return {family.name + suffix for suffix in suffixes} | {s.name for s in family.samples}


def test_every_series_the_dashboard_uses_exists(every_series: set[str]) -> None:
    used = {name for _, expr in expressions() for name in NAME.findall(expr)}
    assert {
        "ironwatch_ingest_records_stored_total", "ironwatch_ingest_lag_seconds_bucket",
        "ironwatch_scoring_round_duration_seconds_bucket",
        "ironwatch_gateway_outbox_unsent_records",
        "ironwatch_http_request_duration_seconds_bucket", "ironwatch_alerts_open",
    } <= used
    assert used - every_series == set()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) missing")
def test_every_expression_parses_as_promql(tmp_path: Path) -> None:
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"ironwatch:dashboard_{i}", "expr": expr}
        for i, (_, expr) in enumerate(expressions())
    ]}]}
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(expressions())} rules found" in result.stdout
