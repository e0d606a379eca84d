"""The assets' running-hours counters: telemetry accounted per batch, adjustments by hand.

`record_running_hours` takes one batch of records (the scoring round's new rows), asks
`cloud.domain.running_hours` what each asset earned and writes it with one UPDATE per
asset that adds to the stored value, so a manual adjustment committed meanwhile is
never overwritten. `adjust_running_hours` is the manual correction, kept as history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import JSON, Table, bindparam, select, type_coerce, update
from sqlalchemy.orm import Session

from cloud.db.models import Asset, RunningHoursAdjustment
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidInputError, NotFoundError
from cloud.domain.running_hours import (
    DEFAULT_IDLE_FRACTION,
    DEFAULT_MAX_GAP_S,
    accumulate,
    is_running,
)
from ironwatch.physics import DEFAULT_FOUNDATION, DEFAULT_ISO_GROUP, iso_class
from models.diagnosis import ISO_10816_3_BOUNDARIES_MMS

__all__ = ["HourMeterReport", "adjust_running_hours", "idle_velocity_mms", "record_running_hours"]

FloatArray = npt.NDArray[np.float64]
# Assets per SELECT of the counters: keeps the IN list well inside every driver's limits.
_CHUNK = 500


@dataclass(frozen=True)
class HourMeterReport:
    """What one batch did to the counters."""

    assets: int = 0  # assets with records after their accounted time
    hours_added: float = 0.0
    records_used: int = 0


def idle_velocity_mms(asset: Asset) -> float:
    """The asset's idle level: configured, else a share of its ISO zone A/B boundary."""
    if asset.idle_velocity_mms is not None:
        return asset.idle_velocity_mms
    return DEFAULT_IDLE_FRACTION * ISO_10816_3_BOUNDARIES_MMS[iso_class(asset.physics)][0]


def _idle(configured: float | None, physics: dict[str, Any] | None) -> float:
    """`idle_velocity_mms` from a row's columns; the physics JSON read for its class only."""
    if configured is not None:
        return configured
    known = physics if isinstance(physics, dict) else {}
    group = known.get("iso_group") or DEFAULT_ISO_GROUP
    foundation = known.get("foundation") or DEFAULT_FOUNDATION
    boundaries = ISO_10816_3_BOUNDARIES_MMS.get((group, foundation))
    if boundaries is None:  # a class the contract does not know: judged as the default
        boundaries = ISO_10816_3_BOUNDARIES_MMS[(DEFAULT_ISO_GROUP, DEFAULT_FOUNDATION)]
    return DEFAULT_IDLE_FRACTION * boundaries[0]


def _utc(at: datetime | None) -> datetime | None:
    """Core rows skip the ORM's UTC conversion: SQLite gives naive UTC back."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def record_running_hours(
    session: Session,
    *,
    asset_ids: npt.NDArray[np.str_],
    ts_s: FloatArray,
    speed_rpm: FloatArray,
    velocity_rms_mms: FloatArray,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> HourMeterReport:
    """Account a batch of records (any order, any assets); unknown assets are skipped.

    Flushes nothing of its own: one UPDATE per asset that earned or moved its accounted
    time, in the caller's transaction.
    """
    if not len(asset_ids):
        return HourMeterReport()
    names, index = np.unique(np.asarray(asset_ids, dtype=str), return_inverse=True)
    wanted = names.tolist()
    table = cast(Table, Asset.__table__)
    # Columns, not ORM objects: no physics validation, no identity map for thousands.
    cols = (table.c.id, table.c.running_hours_at, table.c.running_hours_running,
            table.c.running_hours_per_day, table.c.idle_velocity_mms,
            type_coerce(table.c.physics, JSON))
    rows: dict[str, tuple[datetime | None, bool, float | None, float]] = {}
    for lo in range(0, len(wanted), _CHUNK):
        for aid, at, run, rate, idle, physics in session.execute(
            select(*cols).where(table.c.id.in_(wanted[lo : lo + _CHUNK]))
        ):
            rows[aid] = (_utc(at), bool(run), rate, _idle(idle, physics))
    known = np.array([n in rows for n in wanted], dtype=bool)
    nan = float("nan")
    last_ts = np.array(
        [r[0].timestamp() if (r := rows.get(n)) and r[0] is not None else nan for n in wanted]
    )
    last_run = np.array([bool(r[1]) if (r := rows.get(n)) else False for n in wanted])
    rate = np.array(
        [r[2] if (r := rows.get(n)) and r[2] is not None else nan for n in wanted]
    )
    idle = np.array([r[3] if (r := rows.get(n)) else np.inf for n in wanted])
    running = is_running(speed_rpm, velocity_rms_mms, idle[index])
    keep = known[index]
    out = accumulate(
        index[keep], np.asarray(ts_s, dtype=np.float64)[keep], running[keep],
        last_ts_s=last_ts, last_running=last_run, rate_h_per_day=rate, max_gap_s=max_gap_s,
    )
    moved = np.flatnonzero(known & (out.records_used > 0))
    if not len(moved):
        return HourMeterReport()
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            running_hours=table.c.running_hours + bindparam("b_add"),
            running_hours_at=bindparam("b_at"),
            running_hours_running=bindparam("b_run"),
            running_hours_per_day=bindparam("b_rate"),
            # Not a change of the asset's description: registry refreshes ignore it.
            updated_at=table.c.updated_at,
        )
    )
    params = [
        {
            "b_id": wanted[i],
            "b_add": float(out.hours_added[i]),
            "b_at": datetime.fromtimestamp(float(out.last_ts_s[i]), UTC),
            "b_run": bool(out.last_running[i]),
            "b_rate": None if np.isnan(out.rate_h_per_day[i]) else float(out.rate_h_per_day[i]),
        }
        for i in moved.tolist()
    ]
    session.connection().execute(stmt, params)
    # Asset objects loaded in this session hold the old values: read them again.
    changed = {wanted[i] for i in moved.tolist()}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Asset) and obj.id in changed:
            session.expire(obj)
    return HourMeterReport(
        assets=len(moved),
        hours_added=float(out.hours_added[moved].sum()),
        records_used=int(out.records_used[moved].sum()),
    )


def adjust_running_hours(
    session: Session,
    asset_id: str,
    hours: float,
    *,
    now: datetime,
    actor: str,
    note: str = "",
) -> Asset:
    """Add (or, to correct a mistake, remove) hours by hand; recorded in the history.

    The counter never goes below zero. Telemetry keeps accounting on top of it.
    """
    now = require_utc(now)
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFoundError(f"asset {asset_id} not found")
    session.refresh(asset)
    if asset.running_hours + hours < 0:
        raise InvalidInputError(
            f"running hours cannot go below zero (now {asset.running_hours:.1f} h)"
        )
    table = cast(Table, Asset.__table__)
    session.execute(
        update(table).where(table.c.id == asset_id).values(
            running_hours=table.c.running_hours + hours, updated_at=table.c.updated_at
        )
    )
    session.expire(asset)
    session.add(RunningHoursAdjustment(
        asset_id=asset_id, at=now, hours=hours, total_after=asset.running_hours,
        actor=actor, note=note,
    ))
    session.flush()
    return asset
