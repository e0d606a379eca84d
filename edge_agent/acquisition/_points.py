"""Per-(asset, point) state between reports: window features, scalars, last good values.

Coordinators write into a `PointTable` from their threads; the agent asks it once per
reporting interval for one `PendingRecord` per point. A point with no fresh data repeats
its last good values flagged `stale`, and after `max_stale_s` reports nulls: values are
never invented.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from edge_agent.outbox import PendingRecord
from ironwatch.wire import utc_now
from models.features import temperature_features

__all__ = ["PointKey", "PointTable", "RawWindow"]

PointKey = tuple[str, str]
"""(asset_id, point)."""


@dataclass(frozen=True, slots=True)
class RawWindow:
    """The last raw waveform of a point, kept in memory for snapshot commands."""

    samples_ms2: np.ndarray
    sample_rate_hz: float
    ts: datetime
    speed_rpm: float | None


@dataclass
class _PointState:
    windows: list[dict[str, float]] = field(default_factory=list)
    window_s: float = 0.0
    temps: list[tuple[float, float]] = field(default_factory=list)  # (monotonic s, °C)
    scalars: dict[str, float | None] = field(default_factory=dict)
    scalars_stale: bool = False
    fresh: bool = False
    last_ts: datetime | None = None
    window_ts: datetime | None = None  # capture time of the newest window
    last_good: dict[str, float | None] = field(default_factory=dict)
    last_good_at: float = 0.0  # monotonic
    last_window_s: float = 0.0
    raw: RawWindow | None = None
    has_waveform: bool = False
    deferred: int = 0
    last_window_at: float = 0.0  # monotonic
    last_window_features: dict[str, float | None] = field(default_factory=dict)


# Reporting intervals a point with a waveform source waits for a window before it reports
# its scalars with the last (stale) vibration values.
_MAX_DEFERRALS = 2


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


class PointTable:
    """Thread-safe accumulator of measurements per (asset, point)."""

    def __init__(self, points: Iterable[PointKey], *, max_stale_s: float = 300.0) -> None:
        self._lock = threading.Lock()
        self._points = {key: _PointState() for key in points}
        self.max_stale_s = max_stale_s

    @property
    def keys(self) -> list[PointKey]:
        return list(self._points)

    def add_window(
        self, key: PointKey, features: Mapping[str, float], window_s: float, raw: RawWindow
    ) -> None:
        """Features of one complete waveform window (NaN where a feature has no value)."""
        with self._lock:
            st = self._points[key]
            st.windows.append(dict(features))
            st.window_s += window_s
            st.raw = raw
            st.has_waveform = True
            st.last_window_at = time.monotonic()
            st.fresh = True
            st.last_ts = raw.ts
            st.window_ts = raw.ts

    def add_temperature(self, key: PointKey, temperature_c: float) -> None:
        if not math.isfinite(temperature_c):
            return
        with self._lock:
            st = self._points[key]
            st.temps.append((time.monotonic(), temperature_c))
            st.fresh = True
            st.last_ts = utc_now()

    def set_scalars(
        self, key: PointKey, values: Mapping[str, float | None], *, stale: bool = False
    ) -> None:
        """Latest readings (speed, load, Modbus registers); `stale` if the source said so.

        None is a reading the source no longer has (stale for longer than `max_stale_s`):
        it is reported as null, not dropped, so the record says the value is gone.
        """
        with self._lock:
            st = self._points[key]
            st.scalars.update(
                {k: v for k, v in values.items() if v is None or math.isfinite(v)})
            st.scalars_stale = st.scalars_stale or stale
            st.fresh = True
            st.last_ts = utc_now()

    def raw_window(self, key: PointKey) -> RawWindow | None:
        with self._lock:
            st = self._points.get(key)
            return None if st is None else st.raw

    def collect(self, interval_s: float, *, repeat_stale: bool = True) -> list[PendingRecord]:
        """One record per point that ever had data; resets the interval's accumulators.

        With repeat_stale=False, points without fresh data give no record (final flush).
        """
        now_mono = time.monotonic()
        now = utc_now()
        out: list[PendingRecord] = []
        with self._lock:
            for (asset_id, point), st in self._points.items():
                waiting = st.fresh and st.has_waveform and not st.windows
                if waiting and repeat_stale and st.deferred < _MAX_DEFERRALS:
                    # Scalars came but no window yet (windows as long as the interval, or
                    # jitter): wait for it rather than send a record without vibration.
                    st.deferred += 1
                    continue
                if st.fresh:
                    features = self._summarise(st)
                    stale = st.scalars_stale
                    if st.has_waveform and not st.windows:
                        if not repeat_stale:
                            continue  # final flush: no vibration, no record
                        # The waveform stopped: last good vibration values, flagged stale,
                        # and nulls once they are older than max_stale_s.
                        old = dict(st.last_window_features)
                        if now_mono - st.last_window_at > self.max_stale_s:
                            old = dict.fromkeys(old)
                        features = {**old, **features}
                        stale = True
                    elif st.windows:
                        st.last_window_features = {
                            k: v for k, v in features.items() if k in st.windows[0]}
                    st.deferred = 0
                    if features:
                        st.last_good = features
                        st.last_good_at = now_mono
                        st.last_window_s = st.window_s or interval_s
                        # A record with windows is stamped with their capture time, not
                        # with the arrival of a later scalar reading.
                        ts = (st.window_ts if st.windows else None) or st.last_ts or now
                        out.append(PendingRecord(asset_id, point, ts,
                                                 st.last_window_s, features, stale))
                    st.windows.clear()
                    st.window_s = 0.0
                    st.deferred = 0
                    st.temps.clear()
                    st.scalars.clear()
                    st.scalars_stale = False
                    st.fresh = False
                elif st.last_good and repeat_stale:
                    if now_mono - st.last_good_at > self.max_stale_s:
                        features = dict.fromkeys(st.last_good)
                    else:
                        features = dict(st.last_good)
                    out.append(PendingRecord(asset_id, point, now, st.last_window_s or interval_s,
                                             features, True))
        return out

    @staticmethod
    def _summarise(st: _PointState) -> dict[str, float | None]:
        features: dict[str, float | None] = {}
        if st.windows:
            # The mean over the interval's windows: less variance than any single window.
            names = st.windows[0].keys()
            stacked = np.array([[w.get(n, math.nan) for n in names] for w in st.windows])
            with np.errstate(all="ignore"):
                valid = np.isfinite(stacked)
                sums = np.where(valid, stacked, 0.0).sum(axis=0)
                counts = valid.sum(axis=0)
            for i, name in enumerate(names):
                features[name] = float(sums[i] / counts[i]) if counts[i] else None
        for name, value in st.scalars.items():
            features[name] = _finite(value)
        if st.temps:
            t = np.array([p[0] for p in st.temps])
            c = np.array([p[1] for p in st.temps])
            temp = temperature_features(c, t)
            for name, arr in temp.items():
                features[name] = _finite(float(arr))
        return features
