"""Grouped bar charts over labelled periods (weeks, months), drawn on the server as SVG.

A KPI per period is a handful of numbers, not a signal: bars read better than a line, and
a period without data (None) leaves a gap with a small "–" so it is not read as zero.
Each bar carries `data-series`, `data-period` and `data-value` for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from cloud.dashboard._svg import Frame, LinearScale, fmt_num, nice_ticks, svg_open, text

__all__ = ["BarSeries", "bar_chart"]

_MAX_LABELS = 12


@dataclass(frozen=True)
class BarSeries:
    """One series: a value (or None) per period, in the chart's unit."""

    label: str
    values: Sequence[float | None]
    css: str = "s0"


def bar_chart(
    periods: Sequence[str],
    series: Sequence[BarSeries],
    *,
    title: str,
    unit: str,
    y_max: float | None = None,
    empty_message: str = "no data in this period",
    frame: Frame | None = None,
) -> Markup:
    """Bars for each period, one per series side by side; `y_max` fixes the top (e.g. 100 %)."""
    f = frame or Frame(height=200, bottom=40)
    values = [v for s in series for v in s.values if v is not None]
    parts: list[Markup] = [svg_open(f, title, f"{title} per period, unit {unit}", "bars")]
    parts.append(
        Markup('<rect class="plot-bg" x="{x}" y="{y}" width="{w}" height="{h}"/>').format(
            x=f.left, y=f.top, w=f.plot_w, h=f.plot_h
        )
    )
    if not periods or not values:
        parts.append(text(f.left + f.plot_w / 2, f.top + f.plot_h / 2, empty_message, "empty-msg"))
        parts.append(Markup("</svg>"))
        return Markup("").join(parts)
    top = y_max if y_max is not None else max(max(values) * 1.1, 1e-9)
    ys = LinearScale(0.0, top, f.top + f.plot_h, f.top)
    for t in nice_ticks(0.0, top):
        y = ys(t)
        parts.append(
            Markup('<line class="grid" x1="{a}" x2="{b}" y1="{y:.1f}" y2="{y:.1f}"/>').format(
                a=f.left, b=f.left + f.plot_w, y=y
            )
        )
        parts.append(text(f.left - 6, y + 4, fmt_num(t), "tick", "end"))
    mid = f.top + f.plot_h / 2
    parts.append(
        Markup(
            '<text class="unit" x="14" y="{m:.1f}" text-anchor="middle" '
            'transform="rotate(-90 14 {m:.1f})">{u}</text>'
        ).format(m=mid, u=unit)
    )
    slot = f.plot_w / len(periods)
    bar_w = max(1.0, slot * 0.8 / max(1, len(series)))
    every = max(1, -(-len(periods) // _MAX_LABELS))
    for i, period in enumerate(periods):
        x0 = f.left + i * slot + slot * 0.1
        for j, s in enumerate(series):
            value = s.values[i] if i < len(s.values) else None
            x = x0 + j * bar_w
            if value is None:
                parts.append(text(x + bar_w / 2, f.top + f.plot_h - 3, "–", "tick nodata"))
                continue
            y = ys(min(value, top))
            parts.append(
                Markup(
                    '<rect class="bar {c}" data-series="{n}" data-period="{p}" data-value="{v}" '
                    'x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}">'
                    "<title>{p}: {n} {t} {u}</title></rect>"
                ).format(
                    c=s.css,
                    n=s.label,
                    p=period,
                    v=round(value, 6),
                    x=x,
                    y=y,
                    w=max(bar_w - 1, 1.0),
                    h=f.top + f.plot_h - y,
                    t=fmt_num(value),
                    u=unit,
                )
            )
        if i % every == 0:
            parts.append(text(f.left + (i + 0.5) * slot, f.top + f.plot_h + 16, period, "tick"))
    if len(series) > 1:
        x = f.left + 4
        for s in series:
            parts.append(text(x, f.height - 4, f"■ {s.label}", f"legend {s.css}", "start"))
            x += 28 + sum(12 if ord(c) > 0x2E80 else 7.5 for c in s.label)
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
