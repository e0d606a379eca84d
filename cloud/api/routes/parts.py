"""/parts, /warehouses and /stock-notices: spare parts and where they are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import func, select

from cloud.api.deps import NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import AdminDep, ReaderDep, ServiceDeskDep, page_of
from cloud.api.schemas import Page
from cloud.api.schemas.parts import (
    PartCreate,
    PartPublic,
    StockLevelPublic,
    StockNoticePublic,
    StockSet,
    WarehouseCreate,
    WarehousePublic,
)
from cloud.api.schemas.queries import PageQuery, StockNoticeQuery
from cloud.db.models import Part, StockLevel, StockNotice, Warehouse
from cloud.domain import parts as parts_domain
from cloud.domain.errors import ConflictError, NotFoundError
from ironwatch.ids import ID_PATTERN

router = APIRouter(tags=["spare parts"], responses=ERROR_RESPONSES)
PartId = Annotated[str, Path(pattern=ID_PATTERN)]
WarehouseId = Annotated[str, Path(pattern=ID_PATTERN)]


def _stock_public(level: StockLevel) -> StockLevelPublic:
    return StockLevelPublic(
        part_id=level.part_id,
        warehouse_id=level.warehouse_id,
        on_hand=level.on_hand,
        reserved=level.reserved,
        reorder_level=level.reorder_level,
        available=level.on_hand - level.reserved,
        low=level.on_hand < level.reorder_level,
    )


def _part_public(session: SessionDep, part: Part) -> PartPublic:
    on_hand, reserved = session.execute(
        select(
            func.coalesce(func.sum(StockLevel.on_hand), 0),
            func.coalesce(func.sum(StockLevel.reserved), 0),
        ).where(StockLevel.part_id == part.id)
    ).one()
    return PartPublic(
        id=part.id, name=part.name, unit=part.unit, on_hand=int(on_hand),
        reserved=int(reserved), available=int(on_hand) - int(reserved),
    )


def _part(session: SessionDep, part_id: str) -> Part:
    part = session.get(Part, part_id)
    if part is None:
        raise NotFoundError(f"part {part_id} not found")
    return part


@router.get("/parts", response_model=Page[PartPublic])
def list_parts(
    *, session: SessionDep, _: ReaderDep, q: Annotated[PageQuery, Query()]
) -> Page[PartPublic]:
    """The parts catalogue with stock totals, by part number."""
    query = select(Part).order_by(Part.id)
    return page_of(
        session, query, limit=q.limit, offset=q.offset, schema=PartPublic,
        convert=lambda p: _part_public(session, p),
    )


@router.post("/parts", response_model=PartPublic, status_code=201)
def create_part(body: PartCreate, session: SessionDep, _: AdminDep) -> PartPublic:
    """Add a part to the catalogue."""
    if session.get(Part, body.id) is not None:
        raise ConflictError(f"part {body.id} already exists")
    part = Part(id=body.id, name=body.name, unit=body.unit)
    session.add(part)
    session.flush()
    return _part_public(session, part)


@router.get("/parts/{part_id}", response_model=PartPublic)
def get_part(part_id: PartId, session: SessionDep, _: ReaderDep) -> PartPublic:
    """One part with its stock totals."""
    return _part_public(session, _part(session, part_id))


@router.get("/parts/{part_id}/stock", response_model=list[StockLevelPublic])
def part_stock(part_id: PartId, session: SessionDep, _: ReaderDep) -> list[StockLevelPublic]:
    """Stock of the part per warehouse."""
    _part(session, part_id)
    levels = session.scalars(
        select(StockLevel).where(StockLevel.part_id == part_id).order_by(StockLevel.warehouse_id)
    )
    return [_stock_public(level) for level in levels]


@router.get("/warehouses", response_model=Page[WarehousePublic])
def list_warehouses(
    *, session: SessionDep, _: ReaderDep, q: Annotated[PageQuery, Query()]
) -> Page[WarehousePublic]:
    """Warehouses, by id."""
    query = select(Warehouse).order_by(Warehouse.id)
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=WarehousePublic)


@router.post("/warehouses", response_model=WarehousePublic, status_code=201)
def create_warehouse(body: WarehouseCreate, session: SessionDep, _: AdminDep) -> WarehousePublic:
    """Add a warehouse."""
    if session.get(Warehouse, body.id) is not None:
        raise ConflictError(f"warehouse {body.id} already exists")
    warehouse = Warehouse(id=body.id, name=body.name, region=body.region)
    session.add(warehouse)
    session.flush()
    return WarehousePublic.model_validate(warehouse)


@router.get("/warehouses/{warehouse_id}/stock", response_model=list[StockLevelPublic])
def warehouse_stock(
    warehouse_id: WarehouseId, session: SessionDep, _: ReaderDep
) -> list[StockLevelPublic]:
    """Stock levels in one warehouse, by part number."""
    if session.get(Warehouse, warehouse_id) is None:
        raise NotFoundError(f"warehouse {warehouse_id} not found")
    levels = session.scalars(
        select(StockLevel)
        .where(StockLevel.warehouse_id == warehouse_id)
        .order_by(StockLevel.part_id)
    )
    return [_stock_public(level) for level in levels]


@router.put("/warehouses/{warehouse_id}/stock/{part_id}", response_model=StockLevelPublic)
def set_stock(
    warehouse_id: WarehouseId,
    part_id: PartId,
    body: StockSet,
    session: SessionDep,
    now: NowDep,
    _: ServiceDeskDep,
) -> StockLevelPublic:
    """Set the counted stock and/or reorder level (a delivery, a stocktake); 422 below
    what is reserved. Falling below the reorder level raises a low-stock notice."""
    level = parts_domain.set_stock(
        session, part_id, warehouse_id, now=now, on_hand=body.on_hand,
        reorder_level=body.reorder_level,
    )
    return _stock_public(level)


@router.get("/stock-notices", response_model=Page[StockNoticePublic])
def list_stock_notices(
    *, session: SessionDep, _: ReaderDep, q: Annotated[StockNoticeQuery, Query()]
) -> Page[StockNoticePublic]:
    """Low-stock notices, newest first; `active=true` for the ones not yet cleared."""
    query = select(StockNotice).order_by(StockNotice.raised_at.desc(), StockNotice.id.desc())
    if q.active is not None:
        column = StockNotice.cleared_at
        query = query.where(column.is_(None) if q.active else column.is_not(None))
    if q.part_id:
        query = query.where(StockNotice.part_id.in_(q.part_id))
    if q.warehouse_id:
        query = query.where(StockNotice.warehouse_id.in_(q.warehouse_id))
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=StockNoticePublic)
