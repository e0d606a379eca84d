"""Series read when Prometheus scrapes: the database, scoring health, an ingestion worker.

A process attaches the sources it has (`SOURCES.attach(key, source)`); one collector in the
default registry gathers them at every scrape. A source that raises (the database is
down) is skipped for that scrape, logged and counted in
`ironwatch_metrics_source_errors_total`; the other series are still served.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol, get_args

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db.models import OPEN_ALERT_STATES, OPEN_WORK_ORDER_STATES, Alert, Gateway, WorkOrder
from cloud.domain.vocabulary import (
    PRIORITIES,
    SEVERITIES,
    AlertState,
    WorkOrderState,
)
from ironwatch.gateway_counters import GATEWAY_COUNTER_SERIES

__all__ = [
    "FAILING_ASSETS_SHOWN",
    "SOURCES",
    "Attachment",
    "Source",
    "SourceHub",
    "database_source",
    "ingest_source",
    "scoring_source",
]

log = logging.getLogger(__name__)

Source = Callable[[], Iterable[Metric]]
# Failing assets named one by one (label `asset`); the rest are only counted.
FAILING_ASSETS_SHOWN = 50

SOURCE_ERRORS = Counter(
    "ironwatch_metrics_source_errors",
    "Scrapes in which a metrics source failed (its series were left out).",
    ["source"],
)


class Attachment:
    """A source attached to a hub; `stop()` detaches it (stops with the workers)."""

    def __init__(self, hub: SourceHub, key: str, source: Source) -> None:
        self.hub, self.key, self.source = hub, key, source

    def stop(self) -> None:
        self.hub.detach(self.key, self.source)


class SourceHub:
    """The scrape-time sources of this process, collected as one.

    Families of the same name from several sources are merged and equal samples summed
    (two ingestion workers in one process count together).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, Source] = {}
        self._logged: dict[str, float] = {}

    def attach(self, key: str, source: Source) -> Attachment:
        """Add (or replace) the source under `key`."""
        with self._lock:
            self._sources[key] = source
        return Attachment(self, key, source)

    def detach(self, key: str, source: Source) -> None:
        """Remove the source under `key` if it is still this one."""
        with self._lock:
            if self._sources.get(key) is source:
                del self._sources[key]

    def describe(self) -> list[Metric]:
        return []  # sources come and go; nothing is claimed up front

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            sources = list(self._sources.items())
        gathered: list[Metric] = []
        for key, source in sources:
            try:
                gathered += source()
            except Exception:
                SOURCE_ERRORS.labels(key.partition(":")[0]).inc()
                now = time.monotonic()
                if now - self._logged.get(key, -60.0) >= 60.0:
                    self._logged[key] = now
                    log.exception("metrics source %s failed; its series are left out", key)
        seen: dict[str, int] = {}
        for family in gathered:
            seen[family.name] = seen.get(family.name, 0) + 1
        # A family only one source gives goes out as it is (the common case, and the cheap
        # one with thousands of gateways); the others are merged.
        yield from (f for f in gathered if seen[f.name] == 1)
        yield from _merged([f for f in gathered if seen[f.name] > 1])


def _merged(families: Iterable[Metric]) -> Iterator[Metric]:
    """Families of the same name as one, equal samples (name and labels) summed."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in families:
        if family.name not in merged:
            merged[family.name] = Metric(family.name, family.documentation, family.type)
            values[family.name] = {}
        samples = values[family.name]
        for s in family.samples:
            k = (s.name, tuple(sorted(s.labels.items())))
            samples[k] = samples.get(k, 0.0) + s.value
    for name, family in merged.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
        yield family


SOURCES = SourceHub()
REGISTRY.register(SOURCES)


# -- the database: alerts, work orders, gateways ----------------------------------------------
def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _by(session: Session, column: Any, *where: Any) -> dict[str, int]:
    stmt = select(column, func.count()).group_by(column)
    for clause in where:
        stmt = stmt.where(clause)
    return {str(k): int(n) for k, n in session.execute(stmt).all()}


def database_source(
    session_factory: Callable[[], Session], *, per_gateway: bool = True
) -> Source:
    """Alerts and work orders by state, open ones by severity / priority, gateways by state;
    with `per_gateway`, every registered gateway's last status counters (label `gateway`,
    bounded by the fleet registry) and when it was last seen."""

    def collect() -> list[Metric]:
        with session_factory() as session:
            alerts = _by(session, Alert.state)
            open_alerts = _by(session, Alert.severity, Alert.state.in_(OPEN_ALERT_STATES))
            orders = _by(session, WorkOrder.state)
            open_orders = _by(session, WorkOrder.priority,
                              WorkOrder.state.in_(OPEN_WORK_ORDER_STATES))
            gateways = session.execute(
                select(Gateway.id, Gateway.state, Gateway.last_seen, Gateway.status)
            ).all() if per_gateway else []
            gateway_states = _by(session, Gateway.state)
        out: list[Metric] = []
        for name, doc, label, counts, known in (
            ("ironwatch_alerts", "Alerts by state.", "state", alerts, get_args(AlertState)),
            ("ironwatch_alerts_open", "Open and acknowledged alerts by severity.", "severity",
             open_alerts, SEVERITIES),
            ("ironwatch_work_orders", "Work orders by state.", "state", orders,
             get_args(WorkOrderState)),
            ("ironwatch_work_orders_open", "Open, assigned and in-progress work orders by "
             "priority.", "priority", open_orders, PRIORITIES),
            ("ironwatch_gateways", "Registered gateways by reported state.", "state",
             gateway_states, ("online", "offline", "unknown")),
        ):
            family = _gauge(name, doc, [label])
            for value in sorted({*known, *counts}):
                family.add_metric([value], float(counts.get(value, 0)))
            out.append(family)
        if per_gateway:
            out += _gateway_families(gateways)
        return out

    return collect


def _gateway_families(rows: Iterable[Any]) -> list[Metric]:
    seen = _gauge("ironwatch_gateway_last_seen_timestamp_seconds",
                  "When the cloud last heard a gateway's status (Unix time).", ["gateway"])
    families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
    for gateway_id, _state, last_seen, status in rows:
        if isinstance(last_seen, datetime):
            seen.add_metric([gateway_id], last_seen.timestamp())
        counters = (status or {}).get("counters") or {}
        if not isinstance(counters, dict):
            continue
        for key, value in counters.items():
            series = GATEWAY_COUNTER_SERIES.get(key)
            # A counter this cloud does not know (a newer gateway) is not exported.
            if series is None or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            family = families.get(series.name)
            if family is None:
                family = families[series.name] = (
                    CounterMetricFamily(series.name, series.help, labels=["gateway"])
                    if series.kind == "counter"
                    else GaugeMetricFamily(series.name, series.help, labels=["gateway"])
                )
            family.add_metric([gateway_id], float(value))
    return [seen, *families.values()]


# -- scoring health --------------------------------------------------------------------------
class _Failure(Protocol):
    @property
    def stage(self) -> str: ...


class _Status(Protocol):
    @property
    def status(self) -> str: ...

    @property
    def last_round_at(self) -> datetime | None: ...

    @property
    def failures_total(self) -> int: ...

    @property
    def failing(self) -> dict[str, Any]: ...


class ScoringStatusSource(Protocol):
    """What the metrics read of scoring (`cloud.pipeline.ScoringHealth`)."""

    def status(self, now: datetime | None = None) -> Any: ...


def scoring_source(health: ScoringStatusSource) -> Source:
    """Assets failing (by stage, and the first FAILING_ASSETS_SHOWN by name), the failures
    counted, the last completed round and whether scoring is degraded."""

    def collect() -> list[Metric]:
        status: _Status = health.status()
        by_stage: dict[str, int] = {}
        for failure in status.failing.values():
            stage = str(getattr(failure, "stage", "unknown"))
            by_stage[stage] = by_stage.get(stage, 0) + 1
        failing = _gauge("ironwatch_scoring_assets_failing",
                         "Assets whose scoring fails now, by stage.", ["stage"])
        for stage, n in sorted(by_stage.items()):
            failing.add_metric([stage], float(n))
        named = _gauge(
            "ironwatch_scoring_asset_failing",
            f"1 for each failing asset (the first {FAILING_ASSETS_SHOWN} by id).",
            ["asset", "stage"],
        )
        for asset_id in sorted(status.failing)[:FAILING_ASSETS_SHOWN]:
            named.add_metric([asset_id, str(getattr(status.failing[asset_id], "stage", ""))], 1.0)
        failures = CounterMetricFamily("ironwatch_scoring_asset_failures",
                                       "Asset-rounds skipped because a model call failed.",
                                       value=float(status.failures_total))
        degraded = _gauge("ironwatch_scoring_degraded",
                          "1 while scoring is degraded (an asset fails or rounds lag).", [])
        degraded.add_metric([], 0.0 if status.status == "ok" else 1.0)
        out: list[Metric] = [failing, named, failures, degraded]
        if status.last_round_at is not None:
            last = _gauge("ironwatch_scoring_last_round_timestamp_seconds",
                          "When the last scoring round completed (Unix time).", [])
            last.add_metric([], status.last_round_at.timestamp())
            out.append(last)
        return out

    return collect


# -- an ingestion worker ---------------------------------------------------------------------
class _IngestStats(Protocol):
    @property
    def connected(self) -> bool: ...

    @property
    def duplicates(self) -> int: ...

    @property
    def records_received(self) -> int: ...

    @property
    def store_errors(self) -> int: ...


class IngestWorkerSource(Protocol):
    """What the metrics read of an ingestion worker (`cloud.ingest.IngestionWorker`)."""

    @property
    def stats(self) -> Any: ...


def ingest_source(worker: IngestWorkerSource) -> Source:
    """The worker's broker connection, records received, repeats and store errors."""

    def collect() -> list[Metric]:
        stats: _IngestStats = worker.stats
        connected = _gauge("ironwatch_ingest_connected",
                           "Ingestion workers connected to the broker.", [])
        connected.add_metric([], 1.0 if stats.connected else 0.0)
        return [
            connected,
            CounterMetricFamily("ironwatch_ingest_records_received",
                                "Feature records received in telemetry messages.",
                                value=float(stats.records_received)),
            CounterMetricFamily("ironwatch_ingest_duplicate_records",
                                "Records the store already had (redeliveries, re-sends).",
                                value=float(stats.duplicates)),
            CounterMetricFamily("ironwatch_ingest_store_errors",
                                "Failed telemetry-store calls (each retry counts).",
                                value=float(stats.store_errors)),
        ]

    return collect
