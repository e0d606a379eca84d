"""Server-side SVG charts for the dashboard: trends with ISO zones, spectra with markers, RUL.

Every chart returns safe markup to drop into a template. Positions of zone bands and
frequency markers are computed with the same scale as the data, so a marker drawn at
BPFO sits exactly over the BPFO bin; tests read the `data-*` attributes to check it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup

from cloud.dashboard._svg import (
    FloatArray,
    Frame,
    LinearScale,
    decimate,
    fmt_num,
    nice_ticks,
    path_data,
    svg_open,
    text,
    time_ticks,
)
from cloud.dashboard.i18n import gettext as _

__all__ = [
    "Band",
    "FreqMarker",
    "Series",
    "TimeMarker",
    "empty_chart",
    "rul_chart",
    "score_gauge",
    "sparkline",
    "spectrum_chart",
    "trend_chart",
]


@dataclass(frozen=True)
class Series:
    """One line: x in epoch seconds (trends) or Hz (spectra), y in the chart's unit."""

    label: str
    x: FloatArray
    y: FloatArray
    css: str = "s0"


@dataclass(frozen=True)
class Band:
    """A horizontal band between two y values, e.g. an ISO 10816 zone."""

    lo: float
    hi: float
    label: str
    css: str


@dataclass(frozen=True)
class TimeMarker:
    """A vertical line at an instant, e.g. when an alert opened."""

    at_s: float
    label: str
    css: str = "onset"


@dataclass(frozen=True)
class FreqMarker:
    """A vertical line at a frequency, e.g. 2×BPFO."""

    freq_hz: float
    label: str
    css: str


def _finite_range(values: Sequence[FloatArray]) -> tuple[float, float] | None:
    finite = [v[np.isfinite(v)] for v in values if v.size]
    finite = [v for v in finite if v.size]
    if not finite:
        return None
    return float(min(v.min() for v in finite)), float(max(v.max() for v in finite))


def empty_chart(title: str, message: str, frame: Frame | None = None) -> Markup:
    """A framed placeholder that says why there is nothing to draw."""
    f = frame or Frame(height=120)
    return Markup("").join(
        [
            svg_open(f, title, message, "empty"),
            Markup('<rect class="plot-bg" x="{x}" y="{y}" width="{w}" height="{h}"/>').format(
                x=f.left, y=f.top, w=f.plot_w, h=f.plot_h
            ),
            text(f.left + f.plot_w / 2, f.top + f.plot_h / 2, message, "empty-msg"),
            Markup("</svg>"),
        ]
    )


def _y_axis(f: Frame, ys: LinearScale, ticks: list[float], unit: str) -> list[Markup]:
    out: list[Markup] = []
    for t in ticks:
        y = ys(t)
        out.append(
            Markup('<line class="grid" x1="{a}" x2="{b}" y1="{y:.1f}" y2="{y:.1f}"/>').format(
                a=f.left, b=f.left + f.plot_w, y=y
            )
        )
        out.append(text(f.left - 6, y + 4, fmt_num(t), "tick", "end"))
    mid = f.top + f.plot_h / 2
    out.append(
        Markup(
            '<text class="unit" x="14" y="{m:.1f}" text-anchor="middle" '
            'transform="rotate(-90 14 {m:.1f})">{u}</text>'
        ).format(m=mid, u=unit)
    )
    return out


def trend_chart(
    series: Sequence[Series],
    *,
    title: str,
    unit: str,
    bands: Sequence[Band] = (),
    markers: Sequence[TimeMarker] = (),
    frame: Frame | None = None,
    zero_based: bool = True,
) -> Markup:
    """Feature values over time; zone bands shaded behind, alert onsets as vertical lines.

    Amplitudes read best from zero; a temperature or kurtosis reads best around its data,
    hence `zero_based=False` for those.
    """
    f = frame or Frame()
    x_range = _finite_range([s.x for s in series])
    y_range = _finite_range([s.y for s in series])
    if x_range is None or y_range is None:
        return empty_chart(title, _("no data in this period"), f)
    x0, x1 = x_range
    if x1 - x0 < 1.0:
        x0, x1 = x0 - 30.0, x1 + 30.0
    y1 = y_range[1]
    if zero_based:
        y0 = min(0.0, y_range[0])
    else:
        pad = max(0.1 * (y_range[1] - y_range[0]), 0.5)
        y0, y1 = y_range[0] - pad, y_range[1] + pad
    if bands:
        # Show the zone a value is in plus the next one up, so the margin to it is visible.
        above = [b.lo for b in bands if b.lo > y1]
        y1 = max(y1 * 1.1, min(above) * 1.15 if above else y1)
    y1 = y1 if y1 > y0 else y0 + 1.0
    if zero_based:
        y1 *= 1.05  # headroom so the top of the line does not touch the frame
    xs = LinearScale(x0, x1, f.left, f.left + f.plot_w)
    ys = LinearScale(y0, y1, f.top + f.plot_h, f.top)
    desc = _("%(title)s over time, unit %(unit)s") % {"title": title, "unit": unit}
    parts: list[Markup] = [
        svg_open(f, title, desc, "trend"),
        Markup('<rect class="plot-bg" x="{x}" y="{y}" width="{w}" height="{h}"/>').format(
            x=f.left, y=f.top, w=f.plot_w, h=f.plot_h
        ),
    ]
    for band in bands:
        lo, hi = max(band.lo, y0), min(band.hi, y1)
        if hi <= lo:
            continue
        top, bottom = ys(hi), ys(lo)
        parts.append(
            Markup(
                '<rect class="band {c}" data-zone="{z}" data-lo="{lo}" data-hi="{hi}" '
                'x="{x}" y="{y:.1f}" width="{w}" height="{h:.1f}"/>'
            ).format(
                c=band.css,
                z=band.label,
                lo=band.lo,
                hi=band.hi,
                x=f.left,
                y=top,
                w=f.plot_w,
                h=bottom - top,
            )
        )
        # In the right margin, where no data line can cover the letter.
        parts.append(text(f.left + f.plot_w + 3, top + 12, band.label, "band-label", "start"))
    parts.extend(_y_axis(f, ys, nice_ticks(y0, y1), unit))
    for t, label in time_ticks(x0, x1):
        parts.append(text(xs(t), f.top + f.plot_h + 18, label, "tick", "middle"))
    buckets = int(f.plot_w)
    for s in series:
        order = np.argsort(s.x, kind="stable")
        dx, dy = decimate(s.x[order], s.y[order], buckets)
        d = path_data(xs.many(dx), ys.many(dy))
        parts.append(
            Markup('<path class="line {c}" data-series="{n}" data-points="{p}" d="{d}"/>').format(
                c=s.css, n=s.label, p=dx.size, d=d
            )
        )
    for m in markers:
        if not x0 <= m.at_s <= x1:
            continue
        x = xs(m.at_s)
        parts.append(
            Markup(
                '<line class="marker {c}" data-at="{t}" x1="{x:.1f}" x2="{x:.1f}" '
                'y1="{a}" y2="{b}"/>'
            ).format(c=m.css, t=m.at_s, x=x, a=f.top, b=f.top + f.plot_h)
        )
        # Past the middle the label goes left of the line, or it would run off the chart.
        right_half = x > f.left + f.plot_w / 2
        parts.append(
            text(
                x + (-4 if right_half else 4),
                f.top + f.plot_h - 6,
                m.label,
                f"marker-label {m.css}",
                "end" if right_half else "start",
            )
        )
    if len(series) > 1:
        for i, s in enumerate(series):
            x = f.left + 8 + 150 * i
            parts.append(text(x, f.top + 12, s.label, f"legend {s.css}", "start"))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def spectrum_chart(
    freqs: FloatArray,
    amps: FloatArray,
    *,
    title: str,
    unit: str,
    markers: Sequence[FreqMarker] = (),
    f_max_hz: float | None = None,
    frame: Frame | None = None,
) -> Markup:
    """An amplitude spectrum with labelled frequency markers (shaft orders, defect tones)."""
    f = frame or Frame(height=240, top=40)
    if freqs.size < 2:
        return empty_chart(title, _("no spectrum"), f)
    hi_hz = float(freqs[-1]) if f_max_hz is None else min(float(freqs[-1]), f_max_hz)
    keep = freqs <= hi_hz
    fx, ay = freqs[keep], amps[keep]
    peak = float(np.nanmax(ay[1:])) if ay.size > 1 else 0.0
    y1 = peak * 1.1 if peak > 0 else 1.0
    xs = LinearScale(0.0, hi_hz, f.left, f.left + f.plot_w)
    ys = LinearScale(0.0, y1, f.top + f.plot_h, f.top)
    parts: list[Markup] = [
        svg_open(
            f,
            title,
            _("%(title)s, 0 to %(hz)s Hz, amplitude in %(unit)s")
            % {"title": title, "hz": fmt_num(hi_hz), "unit": unit},
            "spectrum",
        ),
        Markup('<rect class="plot-bg" x="{x}" y="{y}" width="{w}" height="{h}"/>').format(
            x=f.left, y=f.top, w=f.plot_w, h=f.plot_h
        ),
    ]
    parts.extend(_y_axis(f, ys, nice_ticks(0.0, y1), unit))
    for t in nice_ticks(0.0, hi_hz, 8):
        parts.append(text(xs(t), f.top + f.plot_h + 18, fmt_num(t), "tick", "middle"))
    parts.append(text(f.left + f.plot_w, f.height - 2, "Hz", "unit", "end"))
    # Markers go under the trace so the peak they point at stays visible.
    visible = sorted((m for m in markers if 0 < m.freq_hz <= hi_hz), key=lambda m: m.freq_hz)
    for i, m in enumerate(visible):
        x = xs(m.freq_hz)
        parts.append(
            Markup(
                '<line class="marker {c}" data-freq-hz="{fq:.4f}" data-label="{lb}" '
                'x1="{x:.2f}" x2="{x:.2f}" y1="{a}" y2="{b}"/>'
            ).format(c=m.css, fq=m.freq_hz, lb=m.label, x=x, a=f.top - 2, b=f.top + f.plot_h)
        )
        # Three label rows so neighbouring markers (BPFO vs 3×, FTF vs 1×) stay readable.
        parts.append(text(x, f.top - 28 + 12 * (i % 3), m.label, f"marker-label {m.css}"))
    dx, dy = decimate(fx, ay, int(f.plot_w))
    parts.append(
        Markup('<path class="line s0" data-series="{n}" data-points="{p}" d="{d}"/>').format(
            n=title, p=dx.size, d=path_data(xs.many(dx), ys.many(dy))
        )
    )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def rul_chart(
    low_h: float | None,
    median_h: float | None,
    high_h: float | None,
    *,
    frame: Frame | None = None,
) -> Markup:
    """Remaining useful life as a bar: the interval shaded, the median marked, hours on x.

    A median without an upper bound is an open-ended interval: the bar runs to the edge
    and is labelled "beyond horizon".
    """
    f = frame or Frame(height=84, top=14, bottom=30, left=16, right=24)
    if median_h is None or not math.isfinite(median_h):
        return empty_chart(_("Remaining useful life"), _("no RUL estimate"), f)
    lo = low_h if low_h is not None and math.isfinite(low_h) else median_h
    open_ended = high_h is None or not math.isfinite(high_h)
    x_max = max(median_h * 2.0 if open_ended else float(high_h or 0.0), median_h, 1.0) * 1.1
    hi = x_max if open_ended else float(high_h or 0.0)
    xs = LinearScale(0.0, x_max, f.left, f.left + f.plot_w)
    mid = f.top + f.plot_h / 2
    bar_h = f.plot_h * 0.6
    upper = _("beyond horizon") if open_ended else f"{fmt_num(hi)} h"
    desc = _("median %(median)s h, interval %(low)s h to %(high)s") % {
        "median": fmt_num(median_h),
        "low": fmt_num(lo),
        "high": upper,
    }
    parts: list[Markup] = [
        svg_open(f, _("Remaining useful life"), desc, "rul"),
        Markup('<rect class="plot-bg" x="{x}" y="{y}" width="{w}" height="{h}"/>').format(
            x=f.left, y=f.top, w=f.plot_w, h=f.plot_h
        ),
    ]
    for t in nice_ticks(0.0, x_max, 6):
        parts.append(text(xs(t), f.top + f.plot_h + 16, f"{fmt_num(t)} h", "tick"))
    # The fan: the interval fades from the low bound outwards, so the likely part reads first.
    parts.append(
        Markup(
            '<rect class="rul-interval" data-low-h="{lo}" data-high-h="{hi}" x="{x:.1f}" '
            'y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"/>'
        ).format(lo=lo, hi="beyond-horizon" if open_ended else hi, x=xs(lo),
                 y=mid - bar_h / 2, w=max(xs(hi) - xs(lo), 1.0), h=bar_h)
    )
    if open_ended:
        beyond = _("beyond horizon") + " →"
        parts.append(text(xs(hi) - 2, mid + bar_h / 2 + 12, beyond, "rul-beyond", anchor="end"))
    parts.append(
        Markup(
            '<rect class="rul-elapsed" x="{x}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"/>'
        ).format(x=f.left, y=mid - bar_h / 6, w=max(xs(lo) - f.left, 0.0), h=bar_h / 3)
    )
    xm = xs(median_h)
    parts.append(
        Markup(
            '<line class="rul-median" data-median-h="{m}" x1="{x:.1f}" x2="{x:.1f}" '
            'y1="{a:.1f}" y2="{b:.1f}"/>'
        ).format(m=median_h, x=xm, a=mid - bar_h / 2 - 4, b=mid + bar_h / 2 + 4)
    )
    parts.append(text(xm, f.top - 2, f"{fmt_num(median_h)} h", "rul-label"))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def score_gauge(score: float | None, threshold: float | None, *, width: int = 160) -> Markup:
    """A small bar: anomaly score against its alarm threshold (the tick)."""
    f = Frame(width=width, height=18, left=0, right=0, top=3, bottom=3)
    if score is None or not math.isfinite(score):
        return empty_chart(_("Anomaly score"), _("no score"), f)
    limit = threshold if threshold is not None and threshold > 0 else None
    full = max(score, (limit or score) * 1.5, 1e-9)
    xs = LinearScale(0.0, full, 0.0, float(width))
    over = limit is not None and score >= limit
    desc = _("score %(value)s") % {"value": fmt_num(score)} + (
        ", " + _("threshold %(value)s") % {"value": fmt_num(limit)} if limit else ""
    )
    parts: list[Markup] = [
        svg_open(f, _("Anomaly score"), desc, "gauge"),
        Markup('<rect class="gauge-bg" x="0" y="{y}" width="{w}" height="{h}" rx="3"/>').format(
            y=f.top, w=width, h=f.plot_h
        ),
        Markup(
            '<rect class="gauge-fill {c}" x="0" y="{y}" width="{w:.1f}" height="{h}" rx="3"/>'
        ).format(c="over" if over else "under", y=f.top, w=xs(score), h=f.plot_h),
    ]
    if limit is not None:
        parts.append(
            Markup('<line class="gauge-limit" x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{h}"/>').format(
                x=xs(limit), h=f.height
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def sparkline(
    x: FloatArray,
    y: FloatArray,
    *,
    title: str,
    unit: str,
    bands: Sequence[Band] = (),
    width: int = 180,
    height: int = 36,
) -> Markup:
    """A small line without axes over the zone bands: which way the value has been going."""
    f = Frame(width=width, height=height, left=1, right=1, top=2, bottom=2)
    finite = np.isfinite(y)
    if finite.sum() < 2:
        return Markup('<span class="muted spark-empty">{m}</span>').format(m=_("no recent data"))
    x, y = x[finite], y[finite]
    y_hi = float(y.max())
    above = [b.lo for b in bands if b.lo > y_hi]
    y1 = max(y_hi * 1.1, min(above) * 1.05 if above else 0.0, 1e-9)
    xs = LinearScale(float(x.min()), float(x.max()), f.left, f.left + f.plot_w)
    ys = LinearScale(0.0, y1, f.top + f.plot_h, f.top)
    desc = _("%(title)s: latest %(last)s %(unit)s, range %(low)s to %(high)s %(unit)s") % {
        "title": title,
        "last": fmt_num(float(y[-1])),
        "low": fmt_num(float(y.min())),
        "high": fmt_num(y_hi),
        "unit": unit,
    }
    parts: list[Markup] = [svg_open(f, title, desc, "spark")]
    for band in bands:
        lo, hi = max(band.lo, 0.0), min(band.hi, y1)
        if hi <= lo:
            continue
        parts.append(
            Markup(
                '<rect class="band {c}" data-zone="{z}" x="{x}" y="{y:.1f}" width="{w}" '
                'height="{h:.1f}"/>'
            ).format(c=band.css, z=band.label, x=f.left, y=ys(hi), w=f.plot_w, h=ys(lo) - ys(hi))
        )
    dx, dy = decimate(x, y, int(f.plot_w))
    parts.append(
        Markup('<path class="line s0" data-points="{p}" d="{d}"/>').format(
            p=dx.size, d=path_data(xs.many(dx), ys.many(dy))
        )
    )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
