"""UTC discipline: every domain function takes `now` and refuses naive or non-UTC times."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud.domain.errors import InvalidInputError
from ironwatch.wire import as_utc

__all__ = ["require_utc", "utc_now"]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def require_utc(value: datetime) -> datetime:
    """Return `value` in UTC; a naive datetime is a bug upstream, so it is refused."""
    try:
        return as_utc(value, any_offset=True)
    except ValueError as err:
        raise InvalidInputError(f"datetime {value.isoformat()}: {err}") from err
