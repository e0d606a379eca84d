"""Shared schema pieces: base models, ids, pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema

from ironwatch.ids import ID_PATTERN, Id
from ironwatch.wire import MAX_TS, MIN_TS, as_utc

__all__ = [
    "ID_PATTERN",
    "MAX_DB_INT",
    "MAX_TIME",
    "MIN_TIME",
    "Id",
    "InputModel",
    "Page",
    "PublicModel",
    "Text",
    "UtcInput",
    "UtcTime",
]

# Ids and offsets fit a 32-bit signed integer column; larger numbers are rejected as input
# errors instead of reaching the database driver.
MAX_DB_INT = 2**31 - 1
# Times given to the API: the telemetry store counts nanoseconds in a signed 64-bit integer
# (up to 2262-04-11), so a time outside these bounds is an input error, not a store failure.
# The same span the wire contract takes for a record's time.
MIN_TIME = MIN_TS
MAX_TIME = MAX_TS
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]


def _iso_utc(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


UtcTime = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str)]


def _parse_utc(value: object) -> datetime:
    # Only ISO 8601 text with an offset: pydantic's lax mode would also take numbers
    # (epoch seconds) and naive times, which the schema does not promise. The UTC rule
    # itself is the wire contract's.
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as err:
            raise ValueError("expected an ISO 8601 date-time, e.g. 2026-03-02T08:00:00Z") from err
    else:
        raise ValueError("expected an ISO 8601 date-time string")
    utc = as_utc(parsed, any_offset=True)
    if not MIN_TIME <= utc < MAX_TIME:
        raise ValueError(
            f"the date-time must be from {_iso_utc(MIN_TIME)} to before {_iso_utc(MAX_TIME)}"
        )
    return utc


UtcInput = Annotated[
    datetime,
    PlainValidator(_parse_utc),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class InputModel(BaseModel):
    """Request bodies: unknown fields and non-finite numbers are errors, not surprises."""

    # strict: "5" is not an integer and "yes" is not a boolean; the schema says so.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=2000, strict=True)


class PublicModel(BaseModel):
    """Response bodies, read from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total for the filter so clients can page through it."""

    items: list[T]
    total: int
    limit: int
    offset: int
