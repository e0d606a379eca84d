"""Errors of the ingestion package: one base class; connection faults apart from config faults."""

from __future__ import annotations

__all__ = ["IngestConfigError", "IngestConnectError", "IngestError"]


class IngestError(Exception):
    """Base error of cloud ingestion."""


class IngestConfigError(IngestError, ValueError):
    """An IngestConfig that cannot work (bad combination or value)."""


class IngestConnectError(IngestError):
    """The broker could not be reached, or refused the connection or the subscription."""
