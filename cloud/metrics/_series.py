"""The cloud's instrumented series and the small calls that update them.

Ingestion, scoring and HTTP call these (one line where the event happens); everything
else is read at scrape time (`_sources`). Labels are bounded by the code: a store kind, a
topic kind, a dead-letter reason code, a route template, a status class; never a record,
asset or gateway id. All series live in the process's default registry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import HistogramMetricFamily, Metric

from ironwatch import __version__

__all__ = [
    "DEAD_LETTERS",
    "HTTP_REQUEST_DURATION",
    "INGEST_LAG_BUCKETS_S",
    "MQTT_RECEIVED",
    "MQTT_REJECTED",
    "RECORDS_STORED",
    "SCORING_ROUNDS",
    "SCORING_ROUND_DURATION",
    "IngestCounts",
    "RoundFigures",
    "add_ingest_counts",
    "dead_letter",
    "ingest_counts",
    "message_received",
    "message_rejected",
    "records_stored",
    "scoring_fit_progress",
    "scoring_round_completed",
    "scoring_round_failed",
    "store_kind",
    "topic_kind",
]

# `_created` series double every counter for little use; Prometheus does not need them.
disable_created_metrics()

BUILD_INFO = Gauge("ironwatch_build_info", "The cloud's software version (value 1).", ["version"])
BUILD_INFO.labels(__version__).set(1)

# -- ingestion -------------------------------------------------------------------------------
RECORDS_STORED = Counter(
    "ironwatch_ingest_records_stored",
    "Feature records newly written to the telemetry store (repeats not counted).",
    ["store"],
)
MQTT_RECEIVED = Counter(
    "ironwatch_mqtt_messages_received",
    "MQTT messages received by ingestion, by topic kind.",
    ["kind"],
)
MQTT_REJECTED = Counter(
    "ironwatch_mqtt_messages_rejected",
    "Whole MQTT messages refused (dead-lettered unparsed or against the contract).",
    ["kind"],
)
DEAD_LETTERS = Counter(
    "ironwatch_ingest_dead_letters",
    "Dead letters (a refused message or a single refused record), by reason code.",
    ["reason"],
)
INGEST_LAG_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
                        600.0, 1800.0, 3600.0, 21600.0, 86400.0)

# -- scoring ---------------------------------------------------------------------------------
SCORING_ROUND_DURATION = Histogram(
    "ironwatch_scoring_round_duration_seconds",
    "Wall time of one scoring round (read, commission, score, act, save).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
             600.0),
)
SCORING_ROUNDS = Counter(
    "ironwatch_scoring_rounds", "Scoring rounds, by outcome (completed, failed).", ["outcome"]
)
for _outcome in ("completed", "failed"):
    SCORING_ROUNDS.labels(_outcome)
SCORING_ASSETS = Counter(
    "ironwatch_scoring_assets_scored",
    "Assets scored without a failure, summed over rounds (an asset counts once per round).",
)
SCORING_ROWS = Counter(
    "ironwatch_scoring_rows",
    "Telemetry rows through scoring, by stage (read, stale, commissioning, scored).",
    ["stage"],
)
SCORING_LAST_ROUND_ASSETS = Gauge(
    "ironwatch_scoring_last_round_assets", "Assets scored without a failure in the last round."
)
SCORING_ASSETS_HELD = Gauge(
    "ironwatch_scoring_assets_held",
    "Assets this scoring worker holds a lease on (scoring workers on PostgreSQL only).",
)
SCORING_LEASE_CHANGES = Counter(
    "ironwatch_scoring_lease_changes",
    "Assets this scoring worker took (gained: free, rebalanced or taken over from a worker "
    "whose lease ran out) or gave up (lost).",
    ["change"],
)
SCORING_POINTS_FITTED = Counter(
    "ironwatch_scoring_points_fitted",
    "Points (asset, measurement point) the anomaly detector fitted: commissioning, takeovers.",
)
SCORING_FIT_SECONDS = Counter(
    "ironwatch_scoring_fit_seconds", "Time scoring rounds spent fitting the detector."
)
SCORING_FIT_BUDGET = Gauge(
    "ironwatch_scoring_fit_budget_seconds",
    "Time one scoring round may spend fitting points; the rest wait for later rounds.",
)
SCORING_FIT_WAITING = Gauge(
    "ironwatch_scoring_fit_waiting_points",
    "Commissioned points waiting for the detector (not scored until fitted).",
)
SCORING_FIT_OLDEST_WAIT = Gauge(
    "ironwatch_scoring_fit_oldest_wait_seconds",
    "How long the oldest point waiting for the detector has been ready (0: none waits).",
)

# -- HTTP ------------------------------------------------------------------------------------
HTTP_REQUEST_DURATION = Histogram(
    "ironwatch_http_request_duration_seconds",
    "HTTP request latency of the API and dashboard, by method, route template and status class.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

_TOPIC_KINDS = frozenset({"telemetry", "status", "snapshot"})


def topic_kind(topic: str) -> str:
    """`telemetry`, `status`, `snapshot` or `other`: the last level of an ingestion topic."""
    kind = topic.rpartition("/")[2]
    return kind if kind in _TOPIC_KINDS else "other"


def store_kind(store: object) -> str:
    """A store's label: `sqlite`, `influxdb`, `victoriametrics`, ... from its class name."""
    name = type(store).__name__.lower()
    for suffix in ("telemetrystore", "store"):
        name = name.removesuffix(suffix)
    return {"influx": "influxdb"}.get(name, name) or "unknown"


def message_received(topic: str) -> None:
    MQTT_RECEIVED.labels(topic_kind(topic)).inc()


def message_rejected(topic: str) -> None:
    MQTT_REJECTED.labels(topic_kind(topic)).inc()


def dead_letter(reason_code: str) -> None:
    DEAD_LETTERS.labels(reason_code).inc()


class _LagHistogram:
    """Capture-to-stored lag of records, observed a write at a time (numpy, no per-record call).

    Exported as the histogram `ironwatch_ingest_lag_seconds`; a record stamped ahead of
    the cloud's clock counts as 0 s.
    """

    name = "ironwatch_ingest_lag_seconds"
    documentation = ("Time from a record's capture (its timestamp) to being written to the "
                     "telemetry store.")

    def __init__(self, buckets_s: Sequence[float]) -> None:
        self._bounds = np.asarray(buckets_s, dtype=np.float64)
        self._counts = np.zeros(len(buckets_s) + 1, dtype=np.int64)  # last: above every bound
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, lags_s: Iterable[float]) -> None:
        lags = np.maximum(np.fromiter(lags_s, dtype=np.float64), 0.0)
        if not lags.size:
            return
        # side="left": a lag equal to a bound belongs to that bucket (Prometheus's `le`).
        idx = np.searchsorted(self._bounds, lags, side="left")
        counts = np.bincount(idx, minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(lags.sum())

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        buckets = [(_le(b), float(c)) for b, c in zip(self._bounds.tolist(), cumulative,
                                                       strict=False)]
        buckets.append(("+Inf", float(cumulative[-1])))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets,
                                    sum_value=total)


def _le(bound: float) -> str:
    return repr(float(bound))


INGEST_LAG = _LagHistogram(INGEST_LAG_BUCKETS_S)
REGISTRY.register(INGEST_LAG)


def records_stored(store: object, new: int, capture_ts_s: Iterable[float], now_s: float) -> None:
    """A write went through: `new` records were new; observe every written record's lag."""
    if new:
        RECORDS_STORED.labels(store_kind(store)).inc(new)
    INGEST_LAG.observe_many(now_s - t for t in capture_ts_s)


class RoundFigures(Protocol):
    """What a scoring round reports (`cloud.pipeline.RoundReport`)."""

    @property
    def rows_read(self) -> int: ...

    @property
    def rows_stale(self) -> int: ...

    @property
    def rows_commissioning(self) -> int: ...

    @property
    def rows_scored(self) -> int: ...

    @property
    def scored_assets(self) -> set[str]: ...

    @property
    def failed_assets(self) -> set[str]: ...


def scoring_round_completed(report: RoundFigures, duration_s: float) -> None:
    """One round finished: its duration, the assets it scored and the rows it went through."""
    SCORING_ROUND_DURATION.observe(duration_s)
    SCORING_ROUNDS.labels("completed").inc()
    scored = len(report.scored_assets - report.failed_assets)
    SCORING_ASSETS.inc(scored)
    SCORING_LAST_ROUND_ASSETS.set(scored)
    for stage, rows in (("read", report.rows_read), ("stale", report.rows_stale),
                        ("commissioning", report.rows_commissioning),
                        ("scored", report.rows_scored)):
        if rows:
            SCORING_ROWS.labels(stage).inc(rows)


def scoring_leases(held: int, gained: int, lost: int) -> None:
    """A scoring worker renewed its leases: what it holds now, what it gained and lost."""
    SCORING_ASSETS_HELD.set(held)
    if gained:
        SCORING_LEASE_CHANGES.labels("gained").inc(gained)
    if lost:
        SCORING_LEASE_CHANGES.labels("lost").inc(lost)


def scoring_fit_progress(*, fitted: int, seconds: float, waiting: int,
                         oldest_wait_s: float | None, budget_s: float) -> None:
    """A round's fitting: points fitted and the time, what still waits, the budget."""
    if fitted:
        SCORING_POINTS_FITTED.inc(fitted)
    if seconds > 0:
        SCORING_FIT_SECONDS.inc(seconds)
    SCORING_FIT_BUDGET.set(budget_s)
    SCORING_FIT_WAITING.set(waiting)
    SCORING_FIT_OLDEST_WAIT.set(oldest_wait_s or 0.0)


def scoring_round_failed(duration_s: float) -> None:
    """A round raised outside any one asset (it is retried next interval)."""
    SCORING_ROUND_DURATION.observe(duration_s)
    SCORING_ROUNDS.labels("failed").inc()


# -- ingestion in worker processes -----------------------------------------------------------
_INGEST_COUNTERS = {"stored": RECORDS_STORED, "received": MQTT_RECEIVED,
                    "rejected": MQTT_REJECTED, "dead": DEAD_LETTERS}


@dataclass(frozen=True)
class IngestCounts:
    """This process's ingestion series as plain numbers (picklable): what an ingestion
    process sends its service, which adds them to its own series (`add_ingest_counts`)."""

    counters: dict[str, dict[str, float]] = field(default_factory=dict)
    lag_counts: tuple[int, ...] = ()
    lag_sum: float = 0.0


def ingest_counts() -> IngestCounts:
    """The ingestion series of this process so far."""
    counters = {
        key: {s.labels[name]: s.value for family in counter.collect()
              for s in family.samples if s.name.endswith("_total")
              for name in s.labels}
        for key, counter in _INGEST_COUNTERS.items()
    }
    with INGEST_LAG._lock:
        return IngestCounts(counters, tuple(INGEST_LAG._counts.tolist()), INGEST_LAG._sum)


def add_ingest_counts(now: IngestCounts, before: IngestCounts | None) -> None:
    """Add what an ingestion process counted since `before` (its previous report; None for
    a new process) to this process's series, so the service's /metrics covers its workers."""
    before = before or IngestCounts()
    for key, counter in _INGEST_COUNTERS.items():
        old = before.counters.get(key, {})
        for label, value in now.counters.get(key, {}).items():
            delta = value - old.get(label, 0.0)
            if delta > 0:
                counter.labels(label).inc(delta)
    if now.lag_counts:
        old_counts = np.asarray(before.lag_counts or (0,) * len(now.lag_counts), dtype=np.int64)
        delta_counts = np.asarray(now.lag_counts, dtype=np.int64) - old_counts
        with INGEST_LAG._lock:
            INGEST_LAG._counts += np.maximum(delta_counts, 0)
            INGEST_LAG._sum += max(0.0, now.lag_sum - before.lag_sum)
