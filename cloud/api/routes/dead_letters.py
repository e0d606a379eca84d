"""/dead-letters and /ingest/stats: what the ingestion refused, and its counters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api.deps import ContextDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import EngineerDep, page_of
from cloud.api.schemas import Page
from cloud.api.schemas.ingest import DeadLetterPublic, IngestStatsPublic
from cloud.api.schemas.queries import DeadLetterQuery
from cloud.db.models import DeadLetterRow
from cloud.domain.deadletters import dead_letters_query

router = APIRouter(tags=["ingestion"], responses=ERROR_RESPONSES)


def _public(row: DeadLetterRow) -> DeadLetterPublic:
    return DeadLetterPublic(
        id=row.id, received_at=row.received_at, topic=row.topic, gateway_id=row.gateway_id,
        epoch=row.epoch, seq=row.seq, reason_code=row.reason_code, reason=row.reason,
        payload=bytes(row.payload).decode("utf-8", errors="replace"),
        payload_size=row.payload_size, payload_truncated=len(row.payload) < row.payload_size,
    )


@router.get("/dead-letters", response_model=Page[DeadLetterPublic])
def list_dead_letters(
    session: SessionDep, _: EngineerDep, q: Annotated[DeadLetterQuery, Query()]
) -> Page[DeadLetterPublic]:
    """Refused messages and records, newest first; filter by gateway and reason code."""
    return page_of(
        session,
        dead_letters_query(gateway_id=q.gateway_id, reason_code=q.reason),
        limit=q.limit,
        offset=q.offset,
        schema=DeadLetterPublic,
        convert=_public,
    )


@router.get("/ingest/stats", response_model=IngestStatsPublic)
def ingest_stats(context: ContextDep, _: EngineerDep) -> IngestStatsPublic:
    """The ingestion worker's counters: stored, duplicates, dead letters by reason and gateway."""
    current = context.ingest_stats() if context.ingest_stats is not None else None
    if current is None:
        return IngestStatsPublic(running=False, dead_letters_dropped=0)
    stats, dropped = current
    return IngestStatsPublic(running=True, stats=stats.as_dict(), dead_letters_dropped=dropped)
