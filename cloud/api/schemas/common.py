"""Shared schema pieces: base models, ids, pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

__all__ = ["MAX_DB_INT", "Id", "InputModel", "Page", "PublicModel", "Text", "UtcTime"]

# Ids and offsets fit a 32-bit signed integer column; larger numbers are rejected as input
# errors instead of reaching the database driver.
MAX_DB_INT = 2**31 - 1
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", examples=["pump-7"])]
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]


def _iso_utc(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


UtcTime = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str)]


class InputModel(BaseModel):
    """Request bodies: unknown fields and non-finite numbers are errors, not surprises."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=2000)


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
