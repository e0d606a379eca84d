"""Telemetry storage: the TelemetryStore interface, columnar FeatureFrame, and its backends.

`TelemetryReader` is the store's read side, all the API and the dashboard need.

`SqliteTelemetryStore` is the embedded default (one file, no server); `InfluxStore`
writes line protocol to InfluxDB 1.x/2.x/3.x and reads back with InfluxQL;
`VictoriaMetricsStore` writes the same line protocol and reads through the export API.
"""

from cloud.telemetry._errors import (
    RecordRejectedError,
    StoreUnavailableError,
    TelemetryError,
    TelemetryQueryError,
)
from cloud.telemetry._frame import FeatureFrame, TimeLike
from cloud.telemetry._influx import InfluxStore
from cloud.telemetry._sqlite import SqliteTelemetryStore
from cloud.telemetry._store import (
    LEGACY_EPOCH,
    RecordGroup,
    StorableRecord,
    TelemetryReader,
    TelemetryStore,
    WriteResult,
)
from cloud.telemetry._victoria import VictoriaMetricsStore

__all__ = [
    "LEGACY_EPOCH",
    "FeatureFrame",
    "InfluxStore",
    "RecordGroup",
    "RecordRejectedError",
    "SqliteTelemetryStore",
    "StorableRecord",
    "StoreUnavailableError",
    "TelemetryError",
    "TelemetryQueryError",
    "TelemetryReader",
    "TelemetryStore",
    "TimeLike",
    "VictoriaMetricsStore",
    "WriteResult",
]
