"""Spare parts: the catalogue, stock per warehouse, work-order reservations, low-stock notices.

A work order reserves the parts its failure mode needs (catalogue `parts`) when someone
takes it on (accepted, assigned or started); completing it with the parts used takes them
out of stock and gives back what was reserved but not used; cancelling gives back all.
Reserving is one conditional UPDATE (`on_hand - reserved >= n`), so two work orders
reserving the last part at once cannot both get it, on SQLite or PostgreSQL; a check
constraint on the table is the last guard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.db.models import (
    Part,
    PartReservation,
    StockLevel,
    StockNotice,
    Warehouse,
    WorkOrder,
)
from cloud.domain.catalogue import FailureModeCatalogue, default_catalogue
from cloud.domain.errors import InvalidInputError, NotFoundError
from cloud.domain.outbox import enqueue_event

__all__ = [
    "PartNeed",
    "consume_parts",
    "needed_parts",
    "open_stock_notices",
    "parts_of",
    "release_parts",
    "reserve_parts",
    "set_stock",
]

# Reservation states: `reserved` holds stock, `short` waits for stock, `used` and
# `released` are final.
HOLDING = "reserved"


@dataclass(frozen=True)
class PartNeed:
    """One part a work order needs and how it stands."""

    part_id: str
    name: str
    quantity: int
    state: str  # reserved | short | used | released | not_reserved | not_stocked
    warehouse_id: str | None
    used: int
    available: int  # free stock over all warehouses now


def needed_parts(
    failure_mode: str, catalogue: FailureModeCatalogue | None = None
) -> dict[str, int]:
    """Part number → quantity the catalogue names for this failure mode."""
    return dict((catalogue or default_catalogue()).lookup(failure_mode).parts)


def _available(session: Session, part_id: str) -> int:
    rows = session.execute(
        select(StockLevel.on_hand, StockLevel.reserved).where(StockLevel.part_id == part_id)
    ).all()
    return sum(max(on_hand - reserved, 0) for on_hand, reserved in rows)


def _warehouses_for(session: Session, part_id: str, region: str | None) -> list[str]:
    """Warehouses holding the part: the asset's region first, then most free stock."""
    rows = session.execute(
        select(StockLevel.warehouse_id, StockLevel.on_hand - StockLevel.reserved, Warehouse.region)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .where(StockLevel.part_id == part_id)
    ).all()
    ranked = sorted(rows, key=lambda r: (not (region and r[2] == region), -r[1], r[0]))
    return [r[0] for r in ranked]


def _try_reserve(session: Session, part_id: str, warehouse_id: str, quantity: int) -> bool:
    # The condition and the increment in one statement: the database serialises writers
    # on the row, and the second one re-reads it before deciding.
    result = session.execute(
        update(StockLevel)
        .where(
            StockLevel.part_id == part_id,
            StockLevel.warehouse_id == warehouse_id,
            StockLevel.on_hand - StockLevel.reserved >= quantity,
        )
        .values(reserved=StockLevel.reserved + quantity)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def reserve_parts(
    session: Session,
    wo: WorkOrder,
    *,
    now: datetime,
    region: str | None = None,
    catalogue: FailureModeCatalogue | None = None,
) -> list[PartReservation]:
    """Reserve what the work order's failure mode needs; retry parts that were short.

    Parts already reserved are kept; unknown part numbers are skipped (shown as
    `not_stocked`). Returns the rows that changed.
    """
    changed: list[PartReservation] = []
    existing = {r.part_id: r for r in wo.parts if r.state in (HOLDING, "short")}
    for part_id, quantity in needed_parts(wo.failure_mode, catalogue).items():
        if session.get(Part, part_id) is None:
            continue
        row = existing.get(part_id)
        if row is not None and row.state == HOLDING:
            continue
        got = next(
            (w for w in _warehouses_for(session, part_id, region)
             if _try_reserve(session, part_id, w, quantity)),
            None,
        )
        if row is None:
            row = PartReservation(
                part_id=part_id, quantity=quantity, used=0, created_at=now, updated_at=now,
                state="short", warehouse_id=None,
            )
            wo.parts.append(row)
        elif got is None:
            continue  # still short: nothing changed
        row.state = HOLDING if got is not None else "short"
        row.warehouse_id = got
        row.updated_at = now
        changed.append(row)
    session.flush()
    _expire_stock(session)
    return changed


def _expire_stock(session: Session) -> None:
    # Stock rows loaded in this session are stale after the conditional updates.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, StockLevel):
            session.expire(obj)


def _give_back(session: Session, row: PartReservation) -> None:
    if row.state == HOLDING and row.warehouse_id is not None:
        session.execute(
            update(StockLevel)
            .where(StockLevel.part_id == row.part_id, StockLevel.warehouse_id == row.warehouse_id)
            .values(reserved=StockLevel.reserved - row.quantity)
            .execution_options(synchronize_session=False)
        )


def release_parts(session: Session, wo: WorkOrder, *, now: datetime) -> None:
    """Give back every reservation of the work order (it was cancelled)."""
    for row in wo.parts:
        if row.state in (HOLDING, "short"):
            _give_back(session, row)
            row.state = "released"
            row.updated_at = now
    session.flush()
    _expire_stock(session)


def _take(session: Session, part_id: str, warehouse_id: str, quantity: int, held: int) -> bool:
    """Take `quantity` out of stock, of which `held` were reserved for this work order."""
    result = session.execute(
        update(StockLevel)
        .where(
            StockLevel.part_id == part_id,
            StockLevel.warehouse_id == warehouse_id,
            StockLevel.on_hand - StockLevel.reserved >= quantity - held,
        )
        .values(on_hand=StockLevel.on_hand - quantity, reserved=StockLevel.reserved - held)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def consume_parts(
    session: Session,
    wo: WorkOrder,
    used: Mapping[str, int],
    *,
    now: datetime,
    region: str | None = None,
) -> None:
    """The work order is done with `used` parts: take them out of stock, give back the rest.

    A used part that was not reserved is taken from a warehouse with free stock; if none
    has it (it came from a van or elsewhere) it is recorded without a warehouse.
    Unknown part numbers are refused (InvalidInputError).
    """
    for part_id, quantity in used.items():
        if quantity < 0:
            raise InvalidInputError(f"a negative quantity of {part_id}")
        if session.get(Part, part_id) is None:
            raise InvalidInputError(
                f"unknown part {part_id!r}", details={"part_id": part_id}
            )
    remaining = {p: q for p, q in used.items() if q > 0}
    touched: set[tuple[str, str]] = set()
    for row in wo.parts:
        if row.state not in (HOLDING, "short"):
            continue
        if row.state == HOLDING and row.warehouse_id is not None:
            want = remaining.get(row.part_id, 0)
            # All the used quantity from this warehouse if it has it, else what was held.
            take = want
            if not _take(session, row.part_id, row.warehouse_id, want, row.quantity):
                take = min(want, row.quantity)
                _take(session, row.part_id, row.warehouse_id, take, row.quantity)
            touched.add((row.part_id, row.warehouse_id))
            if take:
                remaining[row.part_id] = want - take
            row.used = take
            row.state = "used" if take else "released"
        else:
            row.state = "released"
        row.updated_at = now
    for part_id, quantity in remaining.items():
        if quantity <= 0:
            continue
        got = next(
            (w for w in _warehouses_for(session, part_id, region)
             if _take(session, part_id, w, quantity, 0)),
            None,
        )
        if got is not None:
            touched.add((part_id, got))
        wo.parts.append(
            PartReservation(
                part_id=part_id, quantity=0, used=quantity, warehouse_id=got, state="used",
                created_at=now, updated_at=now,
            )
        )
    session.flush()
    _expire_stock(session)
    for part_id, warehouse_id in sorted(touched):
        _check_low(session, part_id, warehouse_id, now=now)


def _check_low(session: Session, part_id: str, warehouse_id: str, *, now: datetime) -> None:
    """Raise a notice (and an event) when stock fell below the reorder level; clear it
    when it is back at or above."""
    level = session.get(StockLevel, (part_id, warehouse_id))
    if level is None:
        return
    notice = session.scalars(
        select(StockNotice).where(
            StockNotice.part_id == part_id,
            StockNotice.warehouse_id == warehouse_id,
            StockNotice.cleared_at.is_(None),
        )
    ).first()
    low = level.on_hand < level.reorder_level
    if low and notice is None:
        session.add(
            StockNotice(
                part_id=part_id, warehouse_id=warehouse_id, on_hand=level.on_hand,
                reorder_level=level.reorder_level, raised_at=now,
            )
        )
        enqueue_event(
            session,
            "stock.low",
            {
                "part_id": part_id,
                "warehouse_id": warehouse_id,
                "on_hand": level.on_hand,
                "reserved": level.reserved,
                "reorder_level": level.reorder_level,
            },
            now=now,
        )
    elif low and notice is not None:
        notice.on_hand = level.on_hand
    elif not low and notice is not None:
        notice.cleared_at = now
    session.flush()


def set_stock(
    session: Session,
    part_id: str,
    warehouse_id: str,
    *,
    now: datetime,
    on_hand: int | None = None,
    reorder_level: int | None = None,
) -> StockLevel:
    """Set the counted stock and/or reorder level of a part in a warehouse (a stocktake
    or a delivery); refuses fewer on hand than are reserved."""
    if session.get(Part, part_id) is None:
        raise NotFoundError(f"part {part_id} not found")
    if session.get(Warehouse, warehouse_id) is None:
        raise NotFoundError(f"warehouse {warehouse_id} not found")
    level = session.get(StockLevel, (part_id, warehouse_id))
    if level is None:
        level = StockLevel(part_id=part_id, warehouse_id=warehouse_id, on_hand=0, reserved=0,
                           reorder_level=0)
        session.add(level)
        session.flush()
    else:
        session.refresh(level, with_for_update=True)
    if on_hand is not None:
        if on_hand < level.reserved:
            raise InvalidInputError(
                f"{level.reserved} of {part_id} are reserved in {warehouse_id}; "
                f"on hand cannot be {on_hand}",
                details={"reserved": level.reserved},
            )
        level.on_hand = on_hand
    if reorder_level is not None:
        level.reorder_level = reorder_level
    session.flush()
    _check_low(session, part_id, warehouse_id, now=now)
    return level


def parts_of(
    session: Session, wo: WorkOrder, catalogue: FailureModeCatalogue | None = None
) -> list[PartNeed]:
    """What the work order needs and how each part stands: reserved, short, used, ..."""
    names = {p.id: p.name for p in session.scalars(select(Part))}
    out: list[PartNeed] = []
    seen: set[str] = set()
    for row in wo.parts:
        seen.add(row.part_id)
        out.append(
            PartNeed(
                part_id=row.part_id, name=names.get(row.part_id, row.part_id),
                quantity=row.quantity, state=row.state, warehouse_id=row.warehouse_id,
                used=row.used, available=_available(session, row.part_id),
            )
        )
    for part_id, quantity in needed_parts(wo.failure_mode, catalogue).items():
        if part_id in seen:
            continue
        stocked = part_id in names
        out.append(
            PartNeed(
                part_id=part_id, name=names.get(part_id, part_id), quantity=quantity,
                state="not_reserved" if stocked else "not_stocked", warehouse_id=None,
                used=0, available=_available(session, part_id) if stocked else 0,
            )
        )
    return out


def open_stock_notices(session: Session) -> list[StockNotice]:
    """Low-stock notices not yet cleared, oldest first."""
    return list(
        session.scalars(
            select(StockNotice).where(StockNotice.cleared_at.is_(None)).order_by(StockNotice.id)
        )
    )
