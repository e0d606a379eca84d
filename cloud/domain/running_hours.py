"""Running hours from telemetry: pure, vectorised accounting over one batch of records.

A machine runs while its shaft turns (`speed_rpm` above zero, where a record carries it)
or, without a speed, while its vibration is above its idle level. The time between two
consecutive records of an asset, by capture time, counts when both say "running" and the
gap is at most `max_gap_s`: a silent gateway (or a stopped one) earns nothing. Each asset
remembers the capture time it has accounted up to; records at or before it add nothing,
so a replayed or late record never counts twice.

No I/O here: arrays in, arrays out. `cloud.domain.running_hours_store` applies the result
to the assets' rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_IDLE_FRACTION",
    "DEFAULT_MAX_GAP_S",
    "RATE_TIME_CONSTANT_S",
    "HoursUpdate",
    "accumulate",
    "is_running",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

# Longest gap between two running records that still counts: gateways report every few
# seconds to a minute, so 10 minutes is several missed reports, not a pause in telemetry.
DEFAULT_MAX_GAP_S = 600.0
# Without a configured idle level, vibration above this share of the ISO 10816-3 zone A/B
# boundary means running: a stopped machine shows its neighbours' floor vibration, a
# running healthy one sits in zone A, well above a quarter of its upper bound.
DEFAULT_IDLE_FRACTION = 0.25
# The running-hours rate (hours per day) is an exponential average over capture time with
# this time constant: a week, so a weekend stop moves it but does not erase it.
RATE_TIME_CONSTANT_S = 7 * 86400.0


def is_running(
    speed_rpm: FloatArray, velocity_rms_mms: FloatArray, idle_velocity_mms: FloatArray
) -> BoolArray:
    """Per record: running if the speed is above zero; without a speed, vibration above idle.

    NaN is "not reported". A record with neither a speed nor a vibration is not running.
    """
    speed = np.asarray(speed_rpm, dtype=np.float64)
    velocity = np.asarray(velocity_rms_mms, dtype=np.float64)
    idle = np.asarray(idle_velocity_mms, dtype=np.float64)
    by_speed = speed > 0.0
    with np.errstate(invalid="ignore"):
        by_vibration = velocity > idle
    return np.where(np.isfinite(speed), by_speed, by_vibration & np.isfinite(velocity))


@dataclass(frozen=True)
class HoursUpdate:
    """Per asset (same order as the inputs' asset table): what to add and remember."""

    hours_added: FloatArray
    last_ts_s: FloatArray  # NaN: still nothing accounted
    last_running: BoolArray
    rate_h_per_day: FloatArray  # NaN: no capture time elapsed yet to judge a rate
    records_used: IntArray  # records after the last accounted time (replays left out)


def accumulate(
    asset_index: IntArray,
    ts_s: FloatArray,
    running: BoolArray,
    *,
    last_ts_s: FloatArray,
    last_running: BoolArray,
    rate_h_per_day: FloatArray,
    max_gap_s: FloatArray | float = DEFAULT_MAX_GAP_S,
) -> HoursUpdate:
    """Account one batch of records for `len(last_ts_s)` assets.

    `asset_index[i]` says which asset record i belongs to; records of one asset at the
    same capture time (several measurement points) are one instant, running if any says
    so. `last_ts_s` / `last_running` are what each asset accounted up to before (NaN /
    False for none); the result carries the new values. Rows need not be sorted.
    """
    n_assets = len(last_ts_s)
    asset_index = np.asarray(asset_index, dtype=np.intp)
    ts_s = np.asarray(ts_s, dtype=np.float64)
    running = np.asarray(running, dtype=bool)
    last_ts = np.asarray(last_ts_s, dtype=np.float64)
    prev_run = np.asarray(last_running, dtype=bool)
    gap = np.broadcast_to(np.asarray(max_gap_s, dtype=np.float64), (n_assets,))
    # Only what lies after the asset's accounted time; NaN capture times count nowhere.
    floor = np.where(np.isnan(last_ts), -np.inf, last_ts)
    fresh = np.isfinite(ts_s) & (ts_s > floor[asset_index])
    a, t, r = asset_index[fresh], ts_s[fresh], running[fresh]
    used = np.bincount(a, minlength=n_assets).astype(np.intp)
    if not len(a):
        return HoursUpdate(
            hours_added=np.zeros(n_assets), last_ts_s=last_ts.copy(),
            last_running=prev_run.copy(), rate_h_per_day=np.asarray(rate_h_per_day, float).copy(),
            records_used=used,
        )
    order = np.lexsort((t, a))
    a, t, r = a[order], t[order], r[order]
    # One instant per (asset, capture time): running if any of its points says so.
    new_instant = np.r_[True, (a[1:] != a[:-1]) | (t[1:] != t[:-1])]
    group = np.cumsum(new_instant) - 1
    r = np.bincount(group, weights=r.astype(np.float64)) > 0
    a, t = a[new_instant], t[new_instant]
    # Each instant's predecessor: the previous instant of the asset, or what it accounted.
    first = np.r_[True, a[1:] != a[:-1]]
    prev_t = np.where(first, last_ts[a], np.r_[np.nan, t[:-1]])
    prev_r = np.where(first, prev_run[a], np.r_[False, r[:-1]])
    dt = t - prev_t
    with np.errstate(invalid="ignore"):
        earns = r & prev_r & (dt <= gap[a]) & np.isfinite(dt)
    seconds = np.bincount(a, weights=np.where(earns, dt, 0.0), minlength=n_assets)
    last = np.r_[a[1:] != a[:-1], True]
    new_last_ts, new_last_run = last_ts.copy(), prev_run.copy()
    new_last_ts[a[last]] = t[last]
    new_last_run[a[last]] = r[last]
    # Rate: exponential average of the running share over the capture time just covered.
    start = np.where(np.isnan(last_ts), np.full(n_assets, np.inf), last_ts)
    np.minimum.at(start, a, t)
    span = np.where(np.isfinite(start), new_last_ts - start, 0.0)
    old_rate = np.asarray(rate_h_per_day, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_per_day = 24.0 * seconds / span
    weight = 1.0 - np.exp(-np.maximum(span, 0.0) / RATE_TIME_CONSTANT_S)
    blended = np.where(
        np.isnan(old_rate), share_per_day, old_rate + weight * (share_per_day - old_rate)
    )
    rate = np.where(span > 0, blended, old_rate)
    return HoursUpdate(
        hours_added=seconds / 3600.0,
        last_ts_s=new_last_ts,
        last_running=new_last_run,
        rate_h_per_day=rate,
        records_used=used,
    )
