"""UTC discipline: every domain function takes `now` and refuses naive or non-UTC times."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud.domain.errors import InvalidInputError

__all__ = ["require_utc", "utc_now"]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def require_utc(value: datetime) -> datetime:
    """Return `value` in UTC; a naive datetime is a bug upstream, so it is refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError("naive datetime: pass timezone-aware UTC times")
    try:
        return value.astimezone(UTC)
    except OverflowError as err:
        raise InvalidInputError(f"datetime {value.isoformat()} is out of range") from err
