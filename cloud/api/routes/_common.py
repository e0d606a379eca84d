"""Helpers shared by the routers: paging, time filters, role dependencies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cloud.api.auth import Principal
from cloud.api.deps import require
from cloud.api.schemas.common import MAX_DB_INT, Page
from cloud.domain.clock import require_utc

__all__ = [
    "AdminDep",
    "CustomerEngineerDep",
    "CustomerReaderDep",
    "CustomerServiceDep",
    "EngineerDep",
    "Limit",
    "Offset",
    "ReaderDep",
    "ServiceDeskDep",
    "page_of",
    "utc_or_none",
]

# For a route that takes `limit` and `offset` as plain parameters; list endpoints take a
# query model instead (cloud.api.schemas.queries.PageQuery).
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_DB_INT, description="rows to skip")]

# Role sets, named after who they are for; admin is always included by `require`.
AdminDep = Annotated[Principal, Depends(require("admin"))]
EngineerDep = Annotated[Principal, Depends(require("engineer"))]
ServiceDeskDep = Annotated[Principal, Depends(require("service_desk"))]
ReaderDep = Annotated[Principal, Depends(require("engineer", "service_desk"))]
# Routes a customer may call too; each one limits what it reads to `principal.scope`.
CustomerReaderDep = Annotated[
    Principal, Depends(require("engineer", "service_desk", "customer"))
]
CustomerEngineerDep = Annotated[Principal, Depends(require("engineer", "customer"))]
CustomerServiceDep = Annotated[Principal, Depends(require("service_desk", "customer"))]

M = TypeVar("M", bound=BaseModel)


def page_of(
    session: Session,
    query: Select[Any],
    *,
    limit: int,
    offset: int,
    schema: type[M],
    convert: Callable[[Any], M] | None = None,
) -> Page[M]:
    """Run `query` for one page and count the whole filtered set."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(query.limit(limit).offset(offset)).all()
    make = convert or schema.model_validate
    return Page[schema](  # type: ignore[valid-type]
        items=[make(row) for row in rows], total=int(total or 0), limit=limit, offset=offset
    )


def utc_or_none(value: datetime | None) -> datetime | None:
    """Query-string times must say their offset; converted to UTC."""
    return require_utc(value) if value is not None else None
