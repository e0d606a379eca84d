"""Cloud ingestion: MQTT subscriber, validation, dedup (via the store) and dead letters.

Build an `IngestionWorker(IngestConfig(...), store, registry)`, then `start()` / `stop()`.
"""

from cloud.ingest._config import IngestConfig
from cloud.ingest._deadletter import (
    DeadLetter,
    DeadLetterStore,
    MemoryDeadLetterStore,
    SqliteDeadLetterStore,
)
from cloud.ingest._errors import IngestConfigError, IngestConnectError, IngestError
from cloud.ingest._limits import FeatureNameLimit
from cloud.ingest._registry import AssetRegistry, MemoryAssetRegistry
from cloud.ingest._stats import IngestStats
from cloud.ingest._validate import REASON_CODES, Accepted, Rejected, TimeWindow, validate
from cloud.ingest._worker import IngestionWorker

__all__ = [
    "REASON_CODES",
    "Accepted",
    "AssetRegistry",
    "DeadLetter",
    "DeadLetterStore",
    "FeatureNameLimit",
    "IngestConfig",
    "IngestConfigError",
    "IngestConnectError",
    "IngestError",
    "IngestStats",
    "IngestionWorker",
    "MemoryAssetRegistry",
    "MemoryDeadLetterStore",
    "Rejected",
    "SqliteDeadLetterStore",
    "TimeWindow",
    "validate",
]
