"""Schemas for spare parts, warehouses, stock levels and low-stock notices."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from cloud.api.schemas.common import Id, InputModel, PublicModel, UtcTime

__all__ = [
    "PartCreate",
    "PartPublic",
    "StockLevelPublic",
    "StockNoticePublic",
    "StockSet",
    "WarehouseCreate",
    "WarehousePublic",
]

Label = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


class PartCreate(InputModel):
    """A spare part, by part number."""

    id: Id
    name: Label
    unit: str = Field(default="pcs", min_length=1, max_length=16, pattern=r"^[^\x00]*$")


class PartPublic(PublicModel):
    """A spare part with its free stock over all warehouses."""

    id: str
    name: str
    unit: str
    on_hand: int = 0
    reserved: int = 0
    available: int = 0


class WarehouseCreate(InputModel):
    """A store of spare parts."""

    id: Id
    name: str = Field(default="", max_length=200, pattern=r"^[^\x00]*$")
    region: str = Field(default="", max_length=64, pattern=r"^[^\x00]*$")


class WarehousePublic(PublicModel):
    """A warehouse."""

    id: str
    name: str
    region: str


class StockSet(InputModel):
    """Counted stock and/or reorder level of one part in one warehouse."""

    on_hand: int | None = Field(default=None, ge=0, le=1_000_000)
    reorder_level: int | None = Field(default=None, ge=0, le=1_000_000)


class StockLevelPublic(PublicModel):
    """Stock of one part in one warehouse."""

    part_id: str
    warehouse_id: str
    on_hand: int
    reserved: int
    reorder_level: int
    available: int
    low: bool = Field(description="on hand below the reorder level")


class StockNoticePublic(PublicModel):
    """Stock of a part fell below its reorder level in a warehouse."""

    id: int
    part_id: str
    warehouse_id: str
    on_hand: int
    reorder_level: int
    raised_at: UtcTime
    cleared_at: UtcTime | None
