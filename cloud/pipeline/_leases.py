"""Which assets this scoring worker scores: leases in PostgreSQL, all assets on SQLite.

On PostgreSQL a worker's lease is its row in `scoring_workers`, renewed every round to
now + `lease_s`; an asset is the worker's named in its `scoring_assets.holder` while
that lease is unexpired. Each round a worker renews its lease, gives back assets beyond
its fair share (assets / live workers) and takes free ones, or those of a worker whose
lease expired, with `SELECT … FOR UPDATE SKIP LOCKED`, so two workers never take the
same asset. Renewing costs one row a round whatever the share. A worker that dies stops
renewing; after `lease_s` the others take its assets over and resume from the state
saved in the database. A long round (a fleet's commissioning burst read, its first fits)
pushes its lease on at checkpoints (`keep_alive`), so it does not look dead to the others
halfway. Before a round writes alerts and state it locks the rows of the assets it holds
(`fence`): a worker that stalled past its lease writes nothing for assets another worker
took, and no worker takes an asset while its holder commits.

SQLite is the single-process embedded default: every asset is this process's.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import uuid4

from sqlalchemy import CursorResult, delete, exists, func, select, text, update
from sqlalchemy.orm import Session

from cloud.db.models import ScoringAsset, ScoringWorker

__all__ = ["LeaseChange", "Leases", "worker_name"]


def worker_name() -> str:
    """A holder name unique per process: host, pid and a random suffix."""
    return f"{socket.gethostname()[:60]}-{os.getpid()}-{uuid4().hex[:8]}"


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
        # Wall time the lease was last pushed on (renewed or kept alive).
        self._renewed_at = -math.inf

    def renew(self) -> LeaseChange:
        """Renew the lease, balance and take assets; returns the change since the last call."""
        if self.all_mine:
            return LeaseChange()
        now = self.wall_clock()
        with self.session_factory() as session:
            # Every registered asset gets a row (new assets appear between rounds).
            session.execute(text(
                "INSERT INTO scoring_assets (asset_id, holder, open_modes, verdict_rows,"
                " last_verdict_id)"
                " SELECT a.id, NULL, '[]', '[]', 0 FROM assets a"
                " WHERE NOT EXISTS (SELECT 1 FROM scoring_assets s WHERE s.asset_id = a.id)"
                " ON CONFLICT (asset_id) DO NOTHING"
            ))
            session.merge(ScoringWorker(holder=self.holder, seen_until_s=now + self.lease_s))
            # Long-dead workers' rows go; their assets were free once their lease ran out.
            session.execute(
                delete(ScoringWorker).where(ScoringWorker.seen_until_s < now - self.lease_s)
            )
            workers = session.scalar(
                select(func.count()).select_from(ScoringWorker)
                .where(ScoringWorker.seen_until_s >= now)
            ) or 1
            total = session.scalar(select(func.count()).select_from(ScoringAsset)) or 0
            share = math.ceil(total / workers)
            held = set(session.scalars(
                select(ScoringAsset.asset_id).where(ScoringAsset.holder == self.holder)
            ))
            if len(held) > share:
                give = sorted(held)[share:]
                for i in range(0, len(give), 1000):
                    session.execute(
                        update(ScoringAsset)
                        .where(ScoringAsset.asset_id.in_(give[i : i + 1000]),
                               ScoringAsset.holder == self.holder)
                        .values(holder=None)
                    )
                held -= set(give)
            elif len(held) < share:
                live = exists().where(
                    ScoringWorker.holder == ScoringAsset.holder,
                    ScoringWorker.seen_until_s >= now,
                )
                free = list(session.scalars(
                    select(ScoringAsset.asset_id)
                    .where(ScoringAsset.holder.is_(None) | ~live)
                    .order_by(ScoringAsset.asset_id)
                    .limit(share - len(held))
                    .with_for_update(of=ScoringAsset, skip_locked=True)
                ))
                for i in range(0, len(free), 1000):
                    session.execute(
                        update(ScoringAsset)
                        .where(ScoringAsset.asset_id.in_(free[i : i + 1000]))
                        .values(holder=self.holder)
                    )
                held |= set(free)
            session.commit()
        self._renewed_at = now
        change = LeaseChange(mine=held, gained=held - self.mine, lost=self.mine - held)
        self.mine = held
        return change

    def keep_alive(self) -> bool:
        """Push the lease on in the middle of a round; False if it had already run out.

        A lease that ran out is never revived here: the others may have taken its
        assets, and `fence` then keeps this round from writing. One UPDATE of one row,
        at most once per quarter of the lease.
        """
        if self.all_mine:
            return True
        now = self.wall_clock()
        if now - self._renewed_at < self.lease_s / 4.0:
            return True
        with self.session_factory() as session:
            result = cast(CursorResult[Any], session.execute(
                update(ScoringWorker)
                .where(ScoringWorker.holder == self.holder, ScoringWorker.seen_until_s >= now)
                .values(seen_until_s=now + self.lease_s)
            ))
            session.commit()
        if result.rowcount:
            self._renewed_at = now
            return True
        return False

    def fence(self, session: Session) -> set[str] | None:
        """Lock the rows of the assets this worker holds for the transaction; None: all.

        Alerts, work orders and state are written in the same transaction, so no other
        worker can take these assets until it commits. If this worker's lease ran out
        while the round ran, nothing is written: another worker may have its assets.
        """
        if self.all_mine:
            return None
        now = self.wall_clock()
        lease = session.scalar(
            select(ScoringWorker.seen_until_s).where(ScoringWorker.holder == self.holder)
        )
        if lease is None or lease < now:
            return set()
        return set(session.scalars(
            select(ScoringAsset.asset_id)
            .where(ScoringAsset.holder == self.holder)
            .with_for_update()
        ))

    def release(self) -> None:
        """Give every asset back and end the lease (a clean stop): the others take over."""
        if self.all_mine:
            return
        with self.session_factory() as session:
            session.execute(
                update(ScoringAsset).where(ScoringAsset.holder == self.holder)
                .values(holder=None)
            )
            session.execute(delete(ScoringWorker).where(ScoringWorker.holder == self.holder))
            session.commit()
        self.mine = set()
