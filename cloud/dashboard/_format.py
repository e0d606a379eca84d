"""Small text formatters shared by the views and the templates (durations, times, numbers)."""

from __future__ import annotations

import math
from datetime import datetime

from cloud.dashboard._svg import fmt_num

__all__ = ["fmt_ago", "fmt_duration", "fmt_hours", "fmt_hours_range", "fmt_num", "fmt_time"]


def fmt_duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 20 min', '2 d 4 h': two units at most, enough to act on."""
    s = abs(seconds)
    if s < 60:
        return f"{s:.0f} s"
    minutes = int(s // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def fmt_ago(then: datetime | None, now: datetime) -> str:
    """'12 s ago', or 'never'."""
    if then is None:
        return "never"
    return f"{fmt_duration((now - then).total_seconds())} ago"


def fmt_time(at: datetime | None) -> str:
    """UTC time as 'YYYY-MM-DD HH:MM UTC'; the fleet spans time zones, so say which."""
    if at is None:
        return "–"
    return at.strftime("%Y-%m-%d %H:%M UTC")


def fmt_hours(hours: float | None) -> str:
    """Remaining-life hours, in days when that is easier to plan with."""
    if hours is None or not math.isfinite(hours):
        return "–"
    if hours >= 72:
        return f"{hours / 24:.1f} d"
    return f"{fmt_num(hours)} h"


def fmt_hours_range(low: float | None, high: float | None, median: float | None) -> str:
    """An interval in the unit the median is shown in, so both ends compare at a glance.

    No upper bound with a median is an open-ended interval: "beyond horizon".
    """
    if low is not None and math.isfinite(low) and median is not None and (
        high is None or not math.isfinite(high)
    ):
        lo = f"{low / 24:.1f} d" if median >= 72 else f"{fmt_num(low)} h"
        return f"{lo} – beyond horizon"
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "–"
    if median is not None and median >= 72:
        return f"{low / 24:.1f} – {high / 24:.1f} d"
    return f"{fmt_num(low)} – {fmt_num(high)} h"
