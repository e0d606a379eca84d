"""Which assets this scoring worker scores: leases on PostgreSQL rows, all assets on SQLite.

On PostgreSQL every asset has a lease row (`scoring_assets`). Each round a worker
renews the leases it holds, gives back what exceeds its fair share (fleet / live
workers) and takes free or expired ones with `SELECT … FOR UPDATE SKIP LOCKED`, so
two workers never take the same row. A worker that dies stops renewing; after
`lease_s` its assets are free and the others take them over, resuming from the state
saved in the database. Before a round writes alerts and state it locks the rows of
the assets it still holds (`fence`): a worker that stalled past its lease writes
nothing for assets another worker took.

SQLite is the single-process embedded default: every asset is this process's.
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from cloud.db.models import ScoringAsset, ScoringWorker

__all__ = ["LeaseChange", "Leases", "worker_name"]

def worker_name() -> str:
    """A holder name unique per process: host, pid and a random suffix."""
    return f"{socket.gethostname()[:60]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass
class LeaseChange:
    """The outcome of one renewal: what is held now, what was gained and lost."""

    mine: set[str] = field(default_factory=set)
    gained: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)


class Leases:
    """Asset leases of one worker; `all_mine` (SQLite) means no leasing at all."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        lease_s: float,
        holder: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not lease_s > 0:
            raise ValueError(f"lease_s must be > 0, got {lease_s!r}")
        self.session_factory = session_factory
        self.lease_s = float(lease_s)
        self.holder = holder or worker_name()
        self.wall_clock = wall_clock
        with session_factory() as session:
            self.all_mine = session.get_bind().dialect.name != "postgresql"
        self.mine: set[str] = set()

    def renew(self) -> LeaseChange:
        """Renew, balance and take leases; returns the change since the last call."""
        if self.all_mine:
            return LeaseChange()
        now = self.wall_clock()
        until = now + self.lease_s
        with self.session_factory() as session:
            # Every registered asset gets a lease row (new assets appear between rounds).
            session.execute(text(
                "INSERT INTO scoring_assets (asset_id, holder, lease_until_s, open_modes,"
                " verdict_rows, last_verdict_id)"
                " SELECT a.id, NULL, 0, '[]', '[]', 0 FROM assets a"
                " WHERE NOT EXISTS (SELECT 1 FROM scoring_assets s WHERE s.asset_id = a.id)"
                " ON CONFLICT (asset_id) DO NOTHING"
            ))
            session.merge(ScoringWorker(holder=self.holder, seen_until_s=until))
            session.execute(delete(ScoringWorker).where(ScoringWorker.seen_until_s < now))
            workers = session.scalar(
                select(func.count()).select_from(ScoringWorker)
                .where(ScoringWorker.seen_until_s >= now)
            ) or 1
            total = session.scalar(select(func.count()).select_from(ScoringAsset)) or 0
            share = math.ceil(total / max(workers, 1))
            held = set(session.scalars(
                update(ScoringAsset)
                .where(ScoringAsset.holder == self.holder)
                .values(lease_until_s=until)
                .returning(ScoringAsset.asset_id)
            ))
            if len(held) > share:
                give = sorted(held)[share:]
                session.execute(
                    update(ScoringAsset)
                    .where(ScoringAsset.asset_id.in_(give), ScoringAsset.holder == self.holder)
                    .values(holder=None, lease_until_s=0.0)
                )
                held -= set(give)
            elif len(held) < share:
                free = list(session.scalars(
                    select(ScoringAsset.asset_id)
                    .where((ScoringAsset.holder.is_(None)) | (ScoringAsset.lease_until_s < now))
                    .order_by(ScoringAsset.asset_id)
                    .limit(share - len(held))
                    .with_for_update(skip_locked=True)
                ))
                if free:
                    session.execute(
                        update(ScoringAsset)
                        .where(ScoringAsset.asset_id.in_(free))
                        .values(holder=self.holder, lease_until_s=until)
                    )
                    held |= set(free)
            session.commit()
        change = LeaseChange(mine=held, gained=held - self.mine, lost=self.mine - held)
        self.mine = held
        return change

    def fence(self, session: Session) -> set[str] | None:
        """Lock this worker's unexpired lease rows for the transaction; None: all are mine.

        Alerts, work orders and state are written in the same transaction, so no other
        worker can take these assets until it commits, and assets whose lease ran out
        while the round ran are left alone.
        """
        if self.all_mine:
            return None
        now = self.wall_clock()
        held = set(session.scalars(
            select(ScoringAsset.asset_id)
            .where(ScoringAsset.holder == self.holder, ScoringAsset.lease_until_s >= now)
            .with_for_update()
        ))
        return held

    def release(self) -> None:
        """Give every lease back (a clean stop): the others take over at once."""
        if self.all_mine:
            return
        with self.session_factory() as session:
            session.execute(
                update(ScoringAsset).where(ScoringAsset.holder == self.holder)
                .values(holder=None, lease_until_s=0.0)
            )
            session.execute(delete(ScoringWorker).where(ScoringWorker.holder == self.holder))
            session.commit()
        self.mine = set()
