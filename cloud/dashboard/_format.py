"""Small text formatters shared by the views and the templates (durations, times, numbers).

Words come from the request's catalogue (`cloud.dashboard.i18n`), numbers are written
the request's locale's way (Babel), and every time is shown in a named zone
(`cloud.dashboard.zones`): the one given, else the page's.
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

from babel.dates import format_datetime
from babel.numbers import format_decimal

from cloud.dashboard import zones
from cloud.dashboard.i18n import current_locale
from cloud.dashboard.i18n import gettext as _

__all__ = [
    "fmt_ago",
    "fmt_duration",
    "fmt_hours",
    "fmt_hours_range",
    "fmt_num",
    "fmt_time",
    "fmt_zone",
]


def fmt_num(value: float) -> str:
    """A short human label: 3 significant digits, no exponent for everyday magnitudes,
    written the way the page's locale writes numbers."""
    if not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    mag = abs(value)
    if mag < 0.01:
        return f"{value:.1e}"
    if mag >= 1000:
        pattern = "#,##0"
    elif mag >= 100:
        pattern = "0"
    elif mag >= 10:
        pattern = "0.#"
    else:
        pattern = "0.##"
    return str(format_decimal(value, format=pattern, locale=current_locale()))


def fmt_duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 20 min', '2 d 4 h': two units at most, enough to act on."""
    s = abs(seconds)
    if s < 60:
        return _("%(s)d s") % {"s": round(s)}
    minutes = int(s // 60)
    if minutes < 60:
        return _("%(m)d min") % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        if minutes:
            return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
        return _("%(h)d h") % {"h": hours}
    days, hours = divmod(hours, 24)
    if hours:
        return _("%(d)d d %(h)d h") % {"d": days, "h": hours}
    return _("%(d)d d") % {"d": days}


def fmt_ago(then: datetime | None, now: datetime) -> str:
    """'12 s ago', or 'never'."""
    if then is None:
        return _("never")
    return _("%(duration)s ago") % {"duration": fmt_duration((now - then).total_seconds())}


def fmt_time(at: datetime | None, zone: tzinfo | None = None) -> str:
    """'2026-11-27 14:05 CST': the time in `zone` (else the page's zone), zone named, since
    the fleet spans time zones."""
    if at is None:
        return "–"
    local = at.astimezone(zone or zones.current_zone())
    text = format_datetime(local, "yyyy-MM-dd HH:mm", locale=current_locale())
    return f"{text} {zones.zone_label(local)}"


def fmt_zone(zone: tzinfo | None = None) -> str:
    """'Asia/Shanghai (CST, UTC+08:00)': a zone's name, abbreviation and offset now."""
    zone = zone or zones.current_zone()
    name = zones.zone_name(zone)
    local = datetime.now(zone)
    parts = [p for p in dict.fromkeys((zones.zone_label(local), zones.offset_label(local)))
             if p != name]
    return f"{name} ({', '.join(parts)})" if parts else name


def _hours(hours: float) -> str:
    return _("%(n)s h") % {"n": fmt_num(hours)}


def _one_decimal(value: float) -> str:
    return str(format_decimal(value, format="0.0", locale=current_locale()))


def _days(days: float) -> str:
    return _("%(n)s d") % {"n": _one_decimal(days)}


def fmt_hours(hours: float | None) -> str:
    """Remaining-life hours, in days when that is easier to plan with."""
    if hours is None or not math.isfinite(hours):
        return "–"
    if hours >= 72:
        return _days(hours / 24)
    return _hours(hours)


def fmt_hours_range(low: float | None, high: float | None, median: float | None) -> str:
    """An interval in the unit the median is shown in, so both ends compare at a glance.

    No upper bound with a median is an open-ended interval: "beyond horizon".
    """
    if low is not None and math.isfinite(low) and median is not None and (
        high is None or not math.isfinite(high)
    ):
        lo = _days(low / 24) if median >= 72 else _hours(low)
        return _("%(low)s – beyond horizon") % {"low": lo}
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "–"
    if median is not None and median >= 72:
        return f"{_one_decimal(low / 24)} – {_days(high / 24)}"
    return f"{fmt_num(low)} – {_hours(high)}"
