"""Scrape-time series: fleet state from the database, scoring health, an ingestion worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from cloud import metrics
from cloud.db import Alert, Asset, Gateway, WorkOrder, make_engine, make_session_factory, upgrade
from cloud.pipeline import ScoringHealth

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(source: metrics._sources.Source) -> Samples:
    hub = metrics.SourceHub()
    hub.attach("test", source)
    registry = CollectorRegistry()
    registry.register(hub)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples}


def _alert(asset: str, mode: str, state: str, severity: str) -> Alert:
    return Alert(asset_id=asset, failure_mode=mode, state=state, severity=severity, score=1.0,
                 model="m", model_version="1", opened_at=NOW, last_seen_at=NOW)


def _order(asset: str, mode: str, state: str, priority: str) -> WorkOrder:
    return WorkOrder(asset_id=asset, failure_mode=mode, title="t", priority=priority, state=state,
                     created_at=NOW, updated_at=NOW, respond_by=NOW, resolve_by=NOW)


def test_database_source_counts_alerts_work_orders_and_reexports_gateway_counters(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    try:
        with factory() as session:
            session.add_all([
                Gateway(id="gw-a", state="online", last_seen=NOW, status={"counters": {
                    "queued": 12, "dropped": 3, "sent": 100, "some_future_counter": 5}}),
                Gateway(id="gw-b", state="offline", status={"counters": "garbage"}),
                Gateway(id="gw-c", state="unknown", status={}),
            ])
            session.flush()
            session.add_all([Asset(id=f"a{i}", gateway_id="gw-a") for i in range(3)])
            session.flush()
            session.add_all([
                _alert("a0", "imbalance", "open", "alarm"),
                _alert("a1", "imbalance", "acknowledged", "warning"),
                _alert("a2", "imbalance", "resolved", "critical"),
                _alert("a2", "looseness", "resolved", "warning"),
                _order("a0", "imbalance", "open", "P1"),
                _order("a1", "imbalance", "in_progress", "P1"),
                _order("a2", "imbalance", "closed", "P0"),
            ])
            session.commit()
        samples = _scrape(metrics.database_source(factory))
        without_gateways = _scrape(metrics.database_source(factory, per_gateway=False))
    finally:
        engine.dispose()
    assert samples[("ironwatch_alerts", (("state", "open"),))] == 1
    assert samples[("ironwatch_alerts", (("state", "resolved"),))] == 2
    assert samples[("ironwatch_alerts", (("state", "cleared"),))] == 0  # known states: 0
    # Open (and acknowledged) alerts by severity; resolved ones are not open.
    assert samples[("ironwatch_alerts_open", (("severity", "alarm"),))] == 1
    assert samples[("ironwatch_alerts_open", (("severity", "warning"),))] == 1
    assert samples[("ironwatch_alerts_open", (("severity", "critical"),))] == 0
    assert samples[("ironwatch_work_orders", (("state", "in_progress"),))] == 1
    assert samples[("ironwatch_work_orders", (("state", "closed"),))] == 1
    assert samples[("ironwatch_work_orders_open", (("priority", "P1"),))] == 2
    assert samples[("ironwatch_work_orders_open", (("priority", "P0"),))] == 0
    assert samples[("ironwatch_gateways", (("state", "online"),))] == 1
    assert samples[("ironwatch_gateways", (("state", "offline"),))] == 1
    gw_a = (("gateway", "gw-a"),)
    assert samples[("ironwatch_gateway_outbox_unsent_records", gw_a)] == 12
    assert samples[("ironwatch_gateway_outbox_dropped_records_total", gw_a)] == 3
    assert samples[("ironwatch_gateway_records_sent_total", gw_a)] == 100
    assert samples[("ironwatch_gateway_last_seen_timestamp_seconds", gw_a)] == NOW.timestamp()
    # An unknown counter and a gateway whose counters are not a mapping export nothing.
    assert not any("future" in name for name, _ in samples)
    assert not any(labels == (("gateway", "gw-b"),) for _, labels in samples)
    assert not any(name.startswith("ironwatch_gateway_") for name, _ in without_gateways)
    assert ("ironwatch_alerts", (("state", "open"),)) in without_gateways


def test_scoring_source_counts_failing_assets_and_names_a_bounded_few() -> None:
    clock = [NOW]
    health = ScoringHealth(1.0, clock=lambda: clock[0])
    n = metrics.FAILING_ASSETS_SHOWN + 5
    for i in range(n):
        health.failed(f"asset-{i:03d}", "rul" if i % 2 else "anomaly", ValueError("x"), NOW)
    health.failed("asset-000", "anomaly", ValueError("x"), NOW)  # the same asset again
    health.scored("healthy", NOW)
    health.round_completed(NOW)
    samples = _scrape(metrics.scoring_source(health))
    failing = {labels: v for (name, labels), v in samples.items()
               if name == "ironwatch_scoring_assets_failing"}
    assert failing == {(("stage", "anomaly"),): (n + 1) // 2, (("stage", "rul"),): n // 2}
    named = [labels for name, labels in samples if name == "ironwatch_scoring_asset_failing"]
    assert len(named) == metrics.FAILING_ASSETS_SHOWN
    assert (("asset", "asset-000"), ("stage", "anomaly")) in named
    assert samples[("ironwatch_scoring_asset_failures_total", ())] == n + 1
    assert samples[("ironwatch_scoring_degraded", ())] == 1.0
    assert samples[("ironwatch_scoring_last_round_timestamp_seconds", ())] == NOW.timestamp()
    # Recovered: the gauges go back to nothing failing, the counter keeps its count.
    later = NOW + timedelta(seconds=1)
    clock[0] = later
    for i in range(n):
        health.scored(f"asset-{i:03d}", later)
    health.round_completed(later)
    samples = _scrape(metrics.scoring_source(health))
    assert not any(name == "ironwatch_scoring_assets_failing" for name, _ in samples)
    assert samples[("ironwatch_scoring_degraded", ())] == 0.0
    assert samples[("ironwatch_scoring_asset_failures_total", ())] == n + 1


@dataclass
class _Stats:
    connected: bool = True
    duplicates: int = 4
    records_received: int = 120
    store_errors: int = 1


@dataclass
class _Worker:
    stats: _Stats


def test_ingest_source_reads_the_workers_stats() -> None:
    samples = _scrape(metrics.ingest_source(_Worker(_Stats())))
    assert samples[("ironwatch_ingest_connected", ())] == 1.0
    assert samples[("ironwatch_ingest_records_received_total", ())] == 120
    assert samples[("ironwatch_ingest_duplicate_records_total", ())] == 4
    assert samples[("ironwatch_ingest_store_errors_total", ())] == 1
