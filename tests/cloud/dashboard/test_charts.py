"""SVG charts: markers where the frequencies are, zone bands where the limits are, no data lost."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cloud.dashboard._asset_charts import defect_markers, order_markers
from cloud.dashboard._svg import Frame, decimate, nice_ticks, path_data, time_ticks
from cloud.dashboard.charts import (
    Band,
    FreqMarker,
    Series,
    TimeMarker,
    rul_chart,
    score_gauge,
    spectrum_chart,
    trend_chart,
)
from cloud.dashboard.iso import iso_zone, zone_bands
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.wire import FeatureRecord
from models.bearing import SKF_6205
from models.features import envelope_spectrum

from .conftest import FS_HZ, PUMP_RPM, outer_race_waveform

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def num(el: ET.Element, name: str) -> float:
    value = el.get(name)
    assert value is not None, f"no {name} on <{el.tag}>"
    return float(value)


def path_points(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", d)]


def x_of(freq: float, f_max: float, frame: Frame) -> float:
    return frame.left + freq / f_max * frame.plot_w


def test_spectrum_markers_sit_at_their_frequencies() -> None:
    frame = Frame(width=800, height=240, left=60, right=20, top=40, bottom=32)
    freqs = np.linspace(0.0, 500.0, 5001)
    amps = np.zeros_like(freqs)
    markers = [
        FreqMarker(24.6667, "1×", "order"),
        FreqMarker(88.43, "BPFO", "defect bpfo"),
        FreqMarker(400.0, "X", "order"),
        FreqMarker(600.0, "beyond", "order"),
    ]
    root = parse(
        spectrum_chart(
            freqs, amps, title="S", unit="m/s²", markers=markers, f_max_hz=500.0, frame=frame
        )
    )
    lines = {
        ln.get("data-label"): ln
        for ln in root.iter(f"{{{NS['svg']}}}line")
        if "marker" in (ln.get("class") or "")
    }
    assert set(lines) == {"1×", "BPFO", "X"}  # 600 Hz is beyond the axis: not drawn
    for label, freq in (("1×", 24.6667), ("BPFO", 88.43), ("X", 400.0)):
        assert num(lines[label], "x1") == pytest.approx(x_of(freq, 500.0, frame), abs=0.01)
        assert num(lines[label], "data-freq-hz") == pytest.approx(freq, abs=1e-3)


def test_envelope_peak_lines_up_with_bpfo_marker() -> None:
    shaft_hz = PUMP_RPM / 60.0
    freqs, amps = envelope_spectrum(outer_race_waveform(shaft_hz), FS_HZ)
    markers = defect_markers(SKF_6205, shaft_hz)
    svg = spectrum_chart(
        freqs, amps, title="Envelope", unit="m/s²", markers=markers, f_max_hz=500.0
    )
    root = parse(svg)
    trace = next(p for p in root.iter(f"{{{NS['svg']}}}path") if "line" in p.get("class", ""))
    points = path_points(trace.get("d", ""))
    peak_x = min(points, key=lambda p: p[1])[0]  # SVG y grows downwards
    bpfo = next(ln for ln in root.iter(f"{{{NS['svg']}}}line") if ln.get("data-label") == "BPFO")
    # One pixel of 660 spans 0.76 Hz, finer than the 1.25 Hz bin: the peak is on the marker.
    assert abs(num(bpfo, "x1") - peak_x) <= 1.5
    labels = {ln.get("data-label") for ln in root.iter(f"{{{NS['svg']}}}line")}
    assert {"BPFO", "2×BPFO", "3×BPFO", "BPFI", "BSF", "FTF", "2×FTF"} <= labels


def test_defect_and_order_markers() -> None:
    expected = SKF_6205.defect_frequencies(25.0)
    markers = {m.label: m.freq_hz for m in defect_markers(SKF_6205, 25.0)}
    assert markers["BPFO"] == pytest.approx(expected.bpfo)
    assert markers["3×BPFI"] == pytest.approx(3 * expected.bpfi)
    assert len(markers) == 12
    assert [m.freq_hz for m in order_markers(25.0)] == [25.0, 50.0, 75.0]
    assert defect_markers(None, 25.0) == [] and order_markers(None) == []


def test_trend_has_zone_bands_at_iso_limits() -> None:
    frame = Frame()
    t = np.arange(100, dtype=np.float64) * 60.0 + 1.7e9
    v = np.linspace(0.5, 3.5, 100)
    svg = trend_chart(
        [Series("v", t, v)],
        title="Velocity",
        unit="mm/s",
        bands=zone_bands(2, "rigid"),
        markers=[TimeMarker(t[50], "onset")],
        frame=frame,
    )
    root = parse(svg)
    bands = {r.get("data-zone"): r for r in root.iter(f"{{{NS['svg']}}}rect") if r.get("data-zone")}
    assert set(bands) == {"A", "B", "C", "D"}
    # Zone A's top edge and zone B's bottom edge are both at 1.4 mm/s.
    a_top = num(bands["A"], "y")
    b_bottom = num(bands["B"], "y") + num(bands["B"], "height")
    assert a_top == pytest.approx(b_bottom, abs=0.2)
    assert num(bands["A"], "data-hi") == 1.4
    assert num(bands["C"], "data-hi") == 4.5
    onset = next(ln for ln in root.iter(f"{{{NS['svg']}}}line") if ln.get("data-at"))
    assert num(onset, "x1") == pytest.approx(frame.left + frame.plot_w * 50 / 99, abs=0.1)
    line = next(p for p in root.iter(f"{{{NS['svg']}}}path"))
    assert int(num(line, "data-points")) == 100


def test_iso_zone_letters() -> None:
    assert [iso_zone(v, 2, "rigid") for v in (0.5, 1.4, 3.0, 9.0)] == ["A", "B", "C", "D"]
    assert iso_zone(3.0, 1, "flexible") == "A"
    assert iso_zone(None, 2, "rigid") is None and iso_zone(math.nan, 2, "rigid") is None


def test_trend_without_data_says_so() -> None:
    svg = trend_chart([Series("v", np.zeros(0), np.zeros(0))], title="T", unit="x")
    assert "no data" in svg


def test_decimate_keeps_narrow_peaks() -> None:
    x = np.arange(10_000, dtype=np.float64)
    y = np.zeros_like(x)
    y[4321] = 5.0
    dx, dy = decimate(x, y, 200)
    assert dx.size <= 400
    assert 5.0 in dy and 4321.0 in dx
    assert np.all(np.diff(dx) > 0)


def test_path_breaks_at_gaps() -> None:
    d = path_data(np.array([0.0, 1, 2, 3]), np.array([0.0, np.nan, 2, 3]))
    assert d.count("M") == 2 and d.count("L") == 1


def test_ticks() -> None:
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 7.3)[-1] <= 7.3
    ticks = time_ticks(1.7e9, 1.7e9 + 6 * 3600)
    assert 4 <= len(ticks) <= 8 and all(":" in label for _, label in ticks)


def test_rul_bar_positions() -> None:
    frame = Frame(width=500, height=84, left=16, right=24, top=14, bottom=30)
    root = parse(rul_chart(40.0, 120.0, 300.0, frame=frame))
    rect = next(r for r in root.iter(f"{{{NS['svg']}}}rect") if r.get("data-low-h"))
    median = next(ln for ln in root.iter(f"{{{NS['svg']}}}line") if ln.get("data-median-h"))
    scale = frame.plot_w / 330.0
    assert num(rect, "x") == pytest.approx(frame.left + 40 * scale, abs=0.1)
    assert num(rect, "width") == pytest.approx(260 * scale, abs=0.1)
    assert num(median, "x1") == pytest.approx(frame.left + 120 * scale, abs=0.1)
    assert "no RUL" in rul_chart(None, None, None)


def test_gauge_marks_over_threshold() -> None:
    assert "gauge-fill over" in score_gauge(7.2, 4.0)
    assert "gauge-fill under" in score_gauge(1.0, 4.0)


def test_labels_are_escaped() -> None:
    svg = trend_chart(
        [Series("<script>", np.array([0.0, 60]), np.array([1.0, 2]))],
        title="<b>",
        unit="&",
        markers=[TimeMarker(30.0, "<i>")],
    )
    assert "<script>" not in svg and "<i>" not in svg
    parse(svg)  # still well-formed XML


def test_axis_shows_the_next_zone_up_and_no_further() -> None:
    bands = [Band(0, 1, "A", "zone-a"), Band(1, 2, "B", "zone-b"), Band(2, 200, "Z", "z")]
    svg = trend_chart(
        [Series("v", np.array([0.0, 60]), np.array([0.2, 0.3]))], title="T", unit="u", bands=bands
    )
    root = parse(svg)
    zones = [r.get("data-zone") for r in root.iter(f"{{{NS['svg']}}}rect") if r.get("data-zone")]
    assert zones == ["A", "B"]


def test_temperature_axis_fits_its_data() -> None:
    t = np.arange(10, dtype=np.float64) * 60.0
    svg = trend_chart(
        [Series("t", t, np.linspace(41.0, 44.0, 10))], title="T", unit="°C", zero_based=False
    )
    ticks = [
        float(x.text or "nan")
        for x in parse(svg).iter(f"{{{NS['svg']}}}text")
        if x.get("class") == "tick" and x.get("text-anchor") == "end"
    ]
    assert min(ticks) >= 40 and max(ticks) <= 45


def test_long_periods_are_sampled_per_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud.dashboard import _asset_charts

    monkeypatch.setattr(_asset_charts, "SAMPLE_SLICES", 10)
    monkeypatch.setattr(_asset_charts, "SAMPLE_ROWS", 50)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    records = [
        FeatureRecord(
            seq=i,
            asset_id="a",
            point=("de", "nde")[i % 2],
            ts=start + timedelta(seconds=60 * i),
            window_s=1.0,
            features={"velocity_rms_mms": float(i)},
        )
        for i in range(3000)
    ]
    with SqliteTelemetryStore(tmp_path / "t.db") as store:
        store.write("gw", records)
        frame = _asset_charts._sampled_query(
            store, "a", start, start + timedelta(seconds=60 * 3000), ["velocity_rms_mms"]
        )
    assert sorted(set(frame.points.tolist())) == ["de", "nde"]
    assert len(frame) == 2 * 10 * 5  # 5 rows per slice, 10 slices, 2 points
    ts = frame.ts_s
    # Spread over the whole period, not bunched at its start.
    assert ts.min() - start.timestamp() < 600 and ts.max() > start.timestamp() + 0.9 * 180_000


def test_open_ended_rul_runs_to_the_edge_beyond_horizon() -> None:
    frame = Frame(width=500, height=84, left=16, right=24, top=14, bottom=30)
    svg = rul_chart(40.0, 120.0, None, frame=frame)
    root = parse(svg)
    rect = next(r for r in root.iter(f"{{{NS['svg']}}}rect") if r.get("data-low-h"))
    assert rect.get("data-high-h") == "beyond-horizon"
    # The interval runs from the low bound to the plot's right edge.
    assert num(rect, "x") + num(rect, "width") == pytest.approx(frame.left + frame.plot_w, abs=0.2)
    assert "beyond horizon" in svg
    assert "beyond horizon" not in rul_chart(40.0, 120.0, 300.0, frame=frame)
