"""ISO 10816-3 zones as the dashboard draws them: a letter per asset, shaded bands per chart.

The boundaries come from `models.diagnosis`, the table the scorer uses, so the colour on
the page and the zone in an alert can never disagree.
"""

from __future__ import annotations

import math

from cloud.dashboard.charts import Band
from models.diagnosis import ISO_10816_3_BOUNDARIES_MMS

__all__ = ["iso_zone", "zone_bands", "zone_limits"]

_FALLBACK = (2, "rigid")


def zone_limits(group: int, foundation: str) -> tuple[float, float, float]:
    """Zone A/B, B/C and C/D boundaries in mm/s; unknown combinations use group 2 rigid.

    That row has the lowest limits, so an unconfigured asset is never judged more
    leniently than a configured one.
    """
    key = (group, foundation.lower())
    return ISO_10816_3_BOUNDARIES_MMS.get(key, ISO_10816_3_BOUNDARIES_MMS[_FALLBACK])


def iso_zone(velocity_rms_mms: float | None, group: int, foundation: str) -> str | None:
    """The zone letter A–D of one velocity reading, or None when there is no reading."""
    if velocity_rms_mms is None or not math.isfinite(velocity_rms_mms):
        return None
    ab, bc, cd = zone_limits(group, foundation)
    # Same convention as models.diagnosis.iso_zone: a value on a boundary is in the upper zone.
    if velocity_rms_mms < ab:
        return "A"
    if velocity_rms_mms < bc:
        return "B"
    if velocity_rms_mms < cd:
        return "C"
    return "D"


def zone_bands(group: int, foundation: str) -> list[Band]:
    """The four zones as chart bands; D is open-ended (the chart clips it)."""
    ab, bc, cd = zone_limits(group, foundation)
    return [
        Band(0.0, ab, "A", "zone-a"),
        Band(ab, bc, "B", "zone-b"),
        Band(bc, cd, "C", "zone-c"),
        Band(cd, math.inf, "D", "zone-d"),
    ]
