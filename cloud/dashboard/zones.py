"""Which time zone a time on the dashboard is shown in, and how the zone is named.

A time that belongs to a machine (an alert, a work order, a reading) is shown in its
plant's zone: the zone of the asset's site. Anything else, and an asset without a site
zone, is shown in the viewer's zone: the one they chose on the preferences page, else the
one their browser reports (`static/tz.js` puts it in the `tz` cookie), else UTC. Every
shown time names its zone. The page's zone is per request (a context variable).
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo
from functools import cache
from urllib.parse import unquote
from zoneinfo import ZoneInfo, available_timezones

__all__ = [
    "BROWSER_ZONE_COOKIE",
    "ZONE_COOKIE",
    "asset_zone",
    "current_zone",
    "known_zones",
    "offset_label",
    "use_zone",
    "viewer_zone",
    "zone_label",
    "zone_name",
    "zone_named",
]

# The zone a person chose on the preferences page, and the one their browser reports.
ZONE_COOKIE = "ironwatch_zone"
BROWSER_ZONE_COOKIE = "tz"

_current: ContextVar[tzinfo] = ContextVar("ironwatch_zone")


@cache
def known_zones() -> tuple[str, ...]:
    """IANA zone names zoneinfo knows, sorted; the only names a cookie may carry."""
    return tuple(sorted(available_timezones() | {"UTC"}))


@cache
def _zones() -> frozenset[str]:
    return frozenset(known_zones())


def zone_named(name: object) -> ZoneInfo | None:
    """The zone of an IANA name, or None for anything else (a cookie is outside input)."""
    if not isinstance(name, str):
        return None
    name = unquote(name)  # "Asia%2FShanghai" from a script that encoded it
    if name not in _zones():
        return None
    return ZoneInfo(name)


def viewer_zone(chosen: str | None, browser: str | None) -> tzinfo:
    """The viewer's own choice, else their browser's zone, else UTC."""
    return zone_named(chosen) or zone_named(browser) or UTC


def asset_zone(asset: object) -> ZoneInfo | None:
    """The plant's zone of an asset: its site's `timezone`, if it has a site that has one."""
    site = getattr(asset, "site", None)
    return zone_named(getattr(site, "timezone", None))


def use_zone(zone: tzinfo) -> None:
    """Show this request's times in `zone` unless a time says otherwise."""
    _current.set(zone)


def current_zone() -> tzinfo:
    return _current.get(UTC)


def zone_name(zone: tzinfo) -> str:
    """The IANA name of a zone ('Asia/Shanghai'), 'UTC' for UTC."""
    return str(getattr(zone, "key", None) or "UTC")


def zone_label(local: datetime) -> str:
    """How a local time names its zone: the abbreviation if there is one (CST, CET, UTC),
    else the offset (UTC+08:00)."""
    abbr = local.tzname() or ""
    if abbr.isalpha():
        return abbr
    return offset_label(local)


def offset_label(local: datetime) -> str:
    """'UTC+08:00', 'UTC-03:30', 'UTC' for no offset."""
    offset = local.utcoffset()
    if offset is None:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"
