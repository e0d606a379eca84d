"""Dead letters in the cloud database: a bounded table the ingestion writes and the API reads.

The ingestion worker calls `DbDeadLetterStore.put_many` once per batch; past `max_rows`
rows the oldest are deleted (and counted in `dropped`), so a gateway stuck sending
garbage cannot fill the database. Each row keeps at most the first few KiB of the payload.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from cloud.db.engine import SessionFactory
from cloud.db.models import DeadLetterRow
from cloud.ingest import DeadLetter

__all__ = ["DbDeadLetterStore", "dead_letters_query", "to_letter"]

DEFAULT_MAX_ROWS = 100_000


def to_letter(row: DeadLetterRow) -> DeadLetter:
    return DeadLetter(
        received_at=row.received_at, topic=row.topic, reason_code=row.reason_code,
        reason=row.reason, payload=bytes(row.payload), payload_size=row.payload_size,
        gateway_id=row.gateway_id, epoch=row.epoch, seq=row.seq,
    )


def dead_letters_query(
    *,
    gateway_id: str | Sequence[str] | None = None,
    reason_code: str | Sequence[str] | None = None,
) -> Select[DeadLetterRow]:
    """Dead letters newest first, optionally of some gateways and/or reasons (any of)."""
    q = select(DeadLetterRow).order_by(DeadLetterRow.id.desc())
    if gateway_id:
        ids = [gateway_id] if isinstance(gateway_id, str) else list(gateway_id)
        q = q.where(DeadLetterRow.gateway_id.in_(ids))
    if reason_code:
        codes = [reason_code] if isinstance(reason_code, str) else list(reason_code)
        q = q.where(DeadLetterRow.reason_code.in_(codes))
    return q


class DbDeadLetterStore:
    """The ingestion's DeadLetterStore on the cloud database; keeps the newest `max_rows`."""

    def __init__(self, session_factory: SessionFactory, *, max_rows: int = DEFAULT_MAX_ROWS,
                 trim_every: int = 100) -> None:
        if max_rows < 1 or trim_every < 1:
            raise ValueError("max_rows and trim_every must be >= 1")
        self._factory = session_factory
        self.max_rows = max_rows
        self._trim_every = trim_every
        self._since_trim = 0
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, letter: DeadLetter) -> None:
        self.put_many([letter])

    def put_many(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        with self._lock, self._factory() as session:
            session.add_all(
                DeadLetterRow(
                    received_at=d.received_at, topic=d.topic, gateway_id=d.gateway_id,
                    epoch=d.epoch, seq=d.seq, reason_code=d.reason_code, reason=d.reason,
                    payload=d.payload, payload_size=d.payload_size,
                )
                for d in letters
            )
            session.flush()
            self._since_trim += len(letters)
            if self._since_trim >= self._trim_every:
                self._since_trim = 0
                self.dropped += self._trim(session)
            session.commit()

    def _trim(self, session: Session) -> int:
        """Delete all but the newest max_rows rows; how many were deleted."""
        newest = session.scalar(select(func.max(DeadLetterRow.id)))
        if newest is None:
            return 0
        result = session.execute(
            delete(DeadLetterRow).where(DeadLetterRow.id <= newest - self.max_rows)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def recent(self, limit: int = 100) -> list[DeadLetter]:
        with self._factory() as session:
            rows = session.scalars(dead_letters_query().limit(limit)).all()
            return [to_letter(r) for r in rows]

    def count(self, reason_code: str | None = None) -> int:
        with self._factory() as session:
            q = select(func.count()).select_from(DeadLetterRow)
            if reason_code is not None:
                q = q.where(DeadLetterRow.reason_code == reason_code)
            return int(session.scalar(q) or 0)
