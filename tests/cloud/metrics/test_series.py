"""The cloud's instrumented series: lag histogram, label helpers, scoring rounds, the source hub."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from cloud import metrics
from cloud.metrics._series import INGEST_LAG_BUCKETS_S, _LagHistogram
from cloud.telemetry import SqliteTelemetryStore


def _value(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_lag_histogram_buckets_like_prometheus() -> None:
    hist = _LagHistogram((1.0, 10.0))
    hist.observe_many([0.5, 1.0, 1.5, 10.0, 11.0, -3.0])  # -3: a gateway clock ahead -> 0
    registry = CollectorRegistry()
    registry.register(hist)
    get = registry.get_sample_value
    name = "ironwatch_ingest_lag_seconds"
    # `le` is inclusive: 1.0 falls in the 1.0 bucket.
    assert get(f"{name}_bucket", {"le": "1.0"}) == 3
    assert get(f"{name}_bucket", {"le": "10.0"}) == 5
    assert get(f"{name}_bucket", {"le": "+Inf"}) == 6
    assert get(f"{name}_count") == 6
    assert get(f"{name}_sum") == pytest.approx(0.5 + 1.0 + 1.5 + 10.0 + 11.0)
    hist.observe_many([])
    assert get(f"{name}_count") == 6


def test_records_stored_counts_new_records_by_store_and_observes_every_lag() -> None:
    store = SqliteTelemetryStore(":memory:")
    try:
        labels = {"store": "sqlite"}
        stored = _value("ironwatch_ingest_records_stored_total", labels)
        lags = _value("ironwatch_ingest_lag_seconds_count")
        slow = _value("ironwatch_ingest_lag_seconds_bucket", {"le": "60.0"})
        metrics.records_stored(store, 2, [1000.0, 1000.0, 990.0], now_s=1030.0)
    finally:
        store.close()
    assert _value("ironwatch_ingest_records_stored_total", labels) == stored + 2
    assert _value("ironwatch_ingest_lag_seconds_count") == lags + 3
    assert _value("ironwatch_ingest_lag_seconds_bucket", {"le": "60.0"}) == slow + 3
    assert 86400.0 in INGEST_LAG_BUCKETS_S


@pytest.mark.parametrize(("topic", "kind"), [
    ("ironwatch/v1/gw-1/telemetry", "telemetry"),
    ("ironwatch/v1/gw-1/status", "status"),
    ("ironwatch/v1/gw-1/snapshot", "snapshot"),
    ("ironwatch/v1/gw-1/whatever", "other"),
    ("", "other"),
])
def test_topic_kind_is_bounded(topic: str, kind: str) -> None:
    assert metrics.topic_kind(topic) == kind


def test_store_kind_names_the_backend() -> None:
    class InfluxStore:
        pass

    class VictoriaMetricsStore:
        pass

    assert metrics.store_kind(InfluxStore()) == "influxdb"
    assert metrics.store_kind(VictoriaMetricsStore()) == "victoriametrics"


def test_mqtt_and_dead_letter_counters() -> None:
    received = _value("ironwatch_mqtt_messages_received_total", {"kind": "status"})
    rejected = _value("ironwatch_mqtt_messages_rejected_total", {"kind": "telemetry"})
    letters = _value("ironwatch_ingest_dead_letters_total", {"reason": "unknown_gateway"})
    metrics.message_received("ironwatch/v1/gw/status")
    metrics.message_rejected("ironwatch/v1/gw/telemetry")
    metrics.dead_letter("unknown_gateway")
    metrics.dead_letter("unknown_gateway")
    assert _value("ironwatch_mqtt_messages_received_total", {"kind": "status"}) == received + 1
    assert _value("ironwatch_mqtt_messages_rejected_total", {"kind": "telemetry"}) == rejected + 1
    assert _value("ironwatch_ingest_dead_letters_total",
                  {"reason": "unknown_gateway"}) == letters + 2


@dataclass
class _Report:
    rows_read: int = 40
    rows_stale: int = 2
    rows_commissioning: int = 8
    rows_scored: int = 30
    scored_assets: set[str] = field(default_factory=lambda: {"a", "b", "c"})
    failed_assets: set[str] = field(default_factory=lambda: {"c"})


def test_a_round_counts_its_duration_assets_and_rows() -> None:
    rounds = _value("ironwatch_scoring_rounds_total", {"outcome": "completed"})
    failed = _value("ironwatch_scoring_rounds_total", {"outcome": "failed"})
    durations = _value("ironwatch_scoring_round_duration_seconds_count")
    total_s = _value("ironwatch_scoring_round_duration_seconds_sum")
    assets = _value("ironwatch_scoring_assets_scored_total")
    scored = _value("ironwatch_scoring_rows_total", {"stage": "scored"})
    metrics.scoring_round_completed(_Report(), 0.25)
    metrics.scoring_round_failed(0.5)
    assert _value("ironwatch_scoring_rounds_total", {"outcome": "completed"}) == rounds + 1
    assert _value("ironwatch_scoring_rounds_total", {"outcome": "failed"}) == failed + 1
    assert _value("ironwatch_scoring_round_duration_seconds_count") == durations + 2
    assert _value("ironwatch_scoring_round_duration_seconds_sum") == pytest.approx(total_s + 0.75)
    # An asset that failed in the round is not counted as scored.
    assert _value("ironwatch_scoring_assets_scored_total") == assets + 2
    assert _value("ironwatch_scoring_last_round_assets") == 2
    assert _value("ironwatch_scoring_rows_total", {"stage": "scored"}) == scored + 30


def _gauge(name: str, value: float, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, "help", labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def test_hub_merges_sources_and_survives_a_failing_one() -> None:
    hub = metrics.SourceHub()
    registry = CollectorRegistry()
    registry.register(hub)

    def one() -> Iterable[Metric]:
        return [_gauge("x_connected", 1.0), CounterMetricFamily("x_things", "h", value=3.0)]

    def two() -> Iterable[Metric]:
        return [_gauge("x_connected", 0.0), CounterMetricFamily("x_things", "h", value=4.0),
                _gauge("x_other", 7.0, state="a")]

    def broken() -> Iterable[Metric]:
        raise RuntimeError("database down")

    errors = _value("ironwatch_metrics_source_errors_total", {"source": "database"})
    hub.attach("ingest:1", one)
    hub.attach("ingest:2", two)
    attachment = hub.attach("database:main", broken)
    scrape = _scrape(registry)  # one scrape
    assert scrape[("x_connected", ())] == 1.0  # summed: one of two workers connected
    assert scrape[("x_things_total", ())] == 7.0
    assert scrape[("x_other", (("state", "a"),))] == 7.0
    assert _value("ironwatch_metrics_source_errors_total", {"source": "database"}) == errors + 1
    attachment.stop()
    _scrape(registry)
    assert _value("ironwatch_metrics_source_errors_total", {"source": "database"}) == errors + 1
    # Detaching needs the same source: a newer one under the key stays.
    hub.attach("ingest:2", one)
    hub.detach("ingest:2", two)
    assert _scrape(registry)[("x_things_total", ())] == 6.0


def _scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples}
