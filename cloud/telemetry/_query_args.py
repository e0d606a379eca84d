"""Checks of `TelemetryStore.query` arguments that every backend makes the same way."""

from __future__ import annotations

from collections.abc import Sequence

from cloud.telemetry._errors import TelemetryQueryError

__all__ = ["check_asset_ids", "check_limit"]


def check_asset_ids(asset_ids: Sequence[str] | None) -> None:
    """Refuse one id given as a string (it would be read as a sequence of characters)."""
    if isinstance(asset_ids, str):
        raise TelemetryQueryError("asset_ids is a sequence of ids, not one string")


def check_limit(limit: int | None) -> None:
    """Refuse a negative row limit; None means no limit."""
    if limit is not None and limit < 0:
        raise TelemetryQueryError("limit must be >= 0")
