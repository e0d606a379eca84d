"""Prometheus metrics of the cloud processes (docs/metrics.md).

Instrumented series (ingestion, scoring, HTTP) are updated where things happen through the
small calls below; state series (alerts, work orders, gateways, scoring health, an
ingestion worker's connection) are read at scrape time from the sources a process
attaches to `SOURCES`. Each process serves its own registry: `GET /metrics` on the service,
a `MetricsExporter` port on workers without HTTP.
"""

from cloud.metrics._http import (
    MetricsExporter,
    RequestMetrics,
    install_request_metrics,
    metrics_router,
)
from cloud.metrics._series import (
    dead_letter,
    message_received,
    message_rejected,
    records_stored,
    scoring_fit_progress,
    scoring_leases,
    scoring_round_completed,
    scoring_round_failed,
    store_kind,
    topic_kind,
)
from cloud.metrics._sources import (
    FAILING_ASSETS_SHOWN,
    SOURCES,
    Attachment,
    SourceHub,
    database_source,
    ingest_source,
    scoring_source,
)

__all__ = [
    "FAILING_ASSETS_SHOWN",
    "SOURCES",
    "Attachment",
    "MetricsExporter",
    "RequestMetrics",
    "SourceHub",
    "database_source",
    "dead_letter",
    "ingest_source",
    "install_request_metrics",
    "message_received",
    "message_rejected",
    "metrics_router",
    "records_stored",
    "scoring_fit_progress",
    "scoring_leases",
    "scoring_round_completed",
    "scoring_round_failed",
    "scoring_source",
    "store_kind",
    "topic_kind",
]
