"""Low-level SVG plotting: scales, nice ticks, decimated paths. No knowledge of machines.

Charts are drawn on the server so that the pages need no JavaScript and nothing from
the internet; numbers go in, an escaped SVG string comes out.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt
from markupsafe import Markup, escape

from cloud.dashboard.zones import current_zone

__all__ = [
    "FloatArray",
    "Frame",
    "LinearScale",
    "decimate",
    "fmt_num",
    "nice_ticks",
    "path_data",
    "svg_open",
    "time_ticks",
]

FloatArray = npt.NDArray[np.float64]

_NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
# Candidate time-axis steps in seconds, from seconds to weeks.
_TIME_STEPS = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    172800,
    604800,
)


@dataclass(frozen=True)
class Frame:
    """Outer size of a chart and its plot-area margins, in pixels."""

    width: int = 720
    height: int = 220
    left: int = 60
    right: int = 16
    top: int = 16
    bottom: int = 32

    @property
    def plot_w(self) -> float:
        return float(self.width - self.left - self.right)

    @property
    def plot_h(self) -> float:
        return float(self.height - self.top - self.bottom)


@dataclass(frozen=True)
class LinearScale:
    """Maps a data interval onto a pixel interval (either direction)."""

    d0: float
    d1: float
    p0: float
    p1: float

    def __call__(self, value: float) -> float:
        span = self.d1 - self.d0
        frac = 0.5 if span == 0 else (value - self.d0) / span
        return self.p0 + frac * (self.p1 - self.p0)

    def many(self, values: FloatArray) -> FloatArray:
        span = self.d1 - self.d0
        frac = np.full_like(values, 0.5) if span == 0 else (values - self.d0) / span
        return self.p0 + frac * (self.p1 - self.p0)


def fmt_num(value: float) -> str:
    """A short human label: 3 significant digits, no exponent for everyday magnitudes."""
    if not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    mag = abs(value)
    if mag >= 1000:
        return f"{value:,.0f}"
    if mag >= 100:
        return f"{value:.0f}"
    if mag >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    if mag >= 0.01:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.1e}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1-2-2.5-5 × 10ⁿ) covering [lo, hi] with about `count` ticks."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(s * power for s in _NICE_STEPS if s * power >= raw * 0.999)
    first = math.ceil(lo / step - 1e-9) * step
    ticks: list[float] = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def time_ticks(
    lo_s: float, hi_s: float, count: int = 6, zone: tzinfo | None = None
) -> list[tuple[float, str]]:
    """Tick positions on a time axis, aligned to whole steps of local time in `zone` (the
    page's zone by default), with compact labels in that zone."""
    if not (math.isfinite(lo_s) and math.isfinite(hi_s)) or hi_s <= lo_s:
        return []
    tz = zone or current_zone()
    raw = (hi_s - lo_s) / max(count, 1)
    step = next((s for s in _TIME_STEPS if s >= raw), _TIME_STEPS[-1])
    # Align in local time: a +05:30 zone gets ticks on its own whole hours.
    offset = (datetime.fromtimestamp(lo_s, tz).utcoffset() or timedelta(0)).total_seconds()
    first = math.ceil((lo_s + offset) / step) * step - offset
    spans_days = datetime.fromtimestamp(lo_s, tz).date() != datetime.fromtimestamp(hi_s, tz).date()
    if step >= 86400:
        pattern = "%m-%d"
    elif spans_days:
        pattern = "%m-%d %H:%M"
    elif step < 60:
        pattern = "%H:%M:%S"
    else:
        pattern = "%H:%M"
    out: list[tuple[float, str]] = []
    value = float(first)
    while value <= hi_s:
        out.append((value, datetime.fromtimestamp(value, tz).strftime(pattern)))
        value += step
    return out


def decimate(x: FloatArray, y: FloatArray, buckets: int) -> tuple[FloatArray, FloatArray]:
    """Keep the min and max of each of `buckets` equal x-slices, so peaks survive thinning.

    A spectrum has thousands of bins and a chart a few hundred pixels; plain striding would
    drop exactly the narrow peaks an engineer is looking for.
    """
    n = x.size
    if n <= 2 * buckets or buckets <= 0:
        return x, y
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep: list[int] = []
    for a, b in itertools.pairwise(edges.tolist()):
        if b <= a:
            continue
        seg = y[a:b]
        if np.all(np.isnan(seg)):
            keep.append(int(a))
            continue
        i_min = int(a + np.nanargmin(seg))
        i_max = int(a + np.nanargmax(seg))
        keep.extend(sorted({i_min, i_max}))
    idx = np.asarray(keep, dtype=np.int64)
    return x[idx], y[idx]


def path_data(px: FloatArray, py: FloatArray) -> str:
    """SVG path `d` through the points; NaN breaks the line instead of bridging a gap."""
    parts: list[str] = []
    pen_down = False
    for xv, yv in zip(px.tolist(), py.tolist(), strict=True):
        if not (math.isfinite(xv) and math.isfinite(yv)):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{xv:.1f},{yv:.1f}")
        pen_down = True
    return "".join(parts)


def svg_open(frame: Frame, title: str, desc: str, css_class: str) -> Markup:
    """The opening <svg> with an accessible title and description."""
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart {cls}" role="img" '
        'viewBox="0 0 {w} {h}" width="{w}" height="{h}" preserveAspectRatio="xMinYMin meet">'
        "<title>{title}</title><desc>{desc}</desc>"
    ).format(cls=css_class, w=frame.width, h=frame.height, title=title, desc=desc)


def text(x: float, y: float, label: str, css: str, anchor: str = "middle") -> Markup:
    """One escaped <text> element."""
    return Markup('<text x="{x:.1f}" y="{y:.1f}" class="{c}" text-anchor="{a}">{t}</text>').format(
        x=x, y=y, c=css, a=anchor, t=escape(label)
    )
