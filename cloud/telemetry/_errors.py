"""Errors of the telemetry store: one base class, local (bad request) and remote (server) faults."""

from __future__ import annotations

__all__ = [
    "RecordRejectedError",
    "StoreUnavailableError",
    "TelemetryError",
    "TelemetryQueryError",
]


class TelemetryError(Exception):
    """Base error of every telemetry store."""


class TelemetryQueryError(TelemetryError, ValueError):
    """The caller asked for something the store cannot answer (bad argument, bad name)."""


class StoreUnavailableError(TelemetryError):
    """The storage server or file could not be reached or refused a write; retrying may help."""


class RecordRejectedError(TelemetryError, ValueError):
    """The store refused the data itself (a value it cannot hold): retrying cannot help.

    Raised for the whole batch written; the ingestion worker splits the batch to find the
    record at fault and dead-letters that one.
    """
