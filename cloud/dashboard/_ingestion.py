"""The ingestion page's view: gateway events and the dead letters, counted and listed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db.models import DeadLetterRow, GatewayEvent
from cloud.domain.deadletters import dead_letters_query

__all__ = ["DeadLetterLine", "IngestionView", "ingestion_view"]

PREVIEW_CHARS = 160


@dataclass(frozen=True)
class DeadLetterLine:
    row: DeadLetterRow
    preview: str


@dataclass(frozen=True)
class IngestionView:
    events: list[GatewayEvent]
    counts: list[tuple[str, str, int]]  # (gateway or "-", reason, dead letters kept)
    letters: list[DeadLetterLine]
    gateway_id: str | None
    reason_code: str | None


def ingestion_view(
    session: Session, *, gateway_id: str | None = None, reason_code: str | None = None,
    limit: int = 50,
) -> IngestionView:
    events = list(session.scalars(select(GatewayEvent).order_by(GatewayEvent.id.desc())
                                  .limit(20)))
    counts = [
        (gw or "-", reason, int(n))
        for gw, reason, n in session.execute(
            select(DeadLetterRow.gateway_id, DeadLetterRow.reason_code, func.count())
            .group_by(DeadLetterRow.gateway_id, DeadLetterRow.reason_code)
            .order_by(func.count().desc())
        )
    ]
    rows = session.scalars(
        dead_letters_query(gateway_id=gateway_id, reason_code=reason_code).limit(limit)
    )
    letters = [
        DeadLetterLine(r, bytes(r.payload[:PREVIEW_CHARS]).decode("utf-8", errors="replace"))
        for r in rows
    ]
    return IngestionView(events, counts, letters, gateway_id, reason_code)
