"""The assets' running-hours counters: telemetry accounted per batch, adjustments by hand.

`record_running_hours` takes one batch of records (the scoring round's new rows), asks
`cloud.domain.running_hours` what each asset earned and writes it with one UPDATE per
asset that adds to the stored value, so a manual adjustment committed meanwhile is
never overwritten. `adjust_running_hours` is the manual correction, kept as history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Table, bindparam, select, update
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
from ironwatch.physics import iso_class
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
    rows: dict[str, tuple[datetime | None, bool, float | None, float]] = {}
    for lo in range(0, len(wanted), _CHUNK):
        for asset in session.scalars(
            select(Asset).where(Asset.id.in_(wanted[lo : lo + _CHUNK]))
        ):
            rows[asset.id] = (
                asset.running_hours_at, asset.running_hours_running,
                asset.running_hours_per_day, idle_velocity_mms(asset),
            )
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
    table = cast(Table, Asset.__table__)
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
    # Loaded Asset objects hold the old values; the next access reads the new ones.
    for i in moved.tolist():
        loaded = session.get(Asset, wanted[i])
        if loaded is not None:
            session.expire(loaded)
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
