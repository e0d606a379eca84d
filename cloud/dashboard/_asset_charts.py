"""The asset page's pictures: feature trends from the store, spectra from the latest waveform."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from markupsafe import Markup

from cloud.dashboard._views import LATEST_WINDOW, AssetHealth
from cloud.dashboard.charts import (
    FreqMarker,
    Series,
    TimeMarker,
    empty_chart,
    sparkline,
    spectrum_chart,
    trend_chart,
)
from cloud.dashboard.i18n import N_
from cloud.dashboard.i18n import gettext as _
from cloud.dashboard.iso import zone_bands
from cloud.db.models import Asset
from cloud.telemetry import FeatureFrame, TelemetryError, TelemetryReader
from ironwatch.physics import BearingGeometry, iso_class, rpm_to_hz
from ironwatch.wire import WaveformSnapshot
from models.bearing import BearingLike, defect_orders
from models.features import envelope_band_hz, envelope_spectrum, spectrum

__all__ = [
    "TREND_PANELS",
    "Panel",
    "SpectrumView",
    "bearing_of",
    "defect_markers",
    "order_markers",
    "spectrum_view",
    "trend_panels",
    "velocity_sparkline",
]

# (panel title, unit, from zero?, [(feature, series label)]); velocity carries the ISO zones.
TREND_PANELS: tuple[tuple[str, str, bool, tuple[tuple[str, str], ...]], ...] = (
    (N_("Velocity RMS (ISO 10–1000 Hz)"), "mm/s", True, (("velocity_rms_mms", N_("velocity")),)),
    (N_("Acceleration RMS"), "m/s²", True, (("accel_rms_ms2", N_("accel")),)),
    (N_("Kurtosis"), "–", False, (("kurtosis", N_("kurtosis")),)),
    (
        N_("Envelope at bearing defect frequencies"),
        "m/s²",
        True,
        (("env_bpfo_ms2", "BPFO"), ("env_bpfi_ms2", "BPFI")),
    ),
    (N_("Temperature"), "°C", False, (("temperature_c", N_("temperature")),)),
)
_HARMONICS = (1, 2, 3)
# Up to this span trends load every record; beyond it, a bounded sample (see _sampled_query).
FULL_RESOLUTION_SPAN = timedelta(hours=25)
SAMPLE_SLICES = 240
SAMPLE_ROWS = 24_000


@dataclass(frozen=True)
class Panel:
    """One titled chart."""

    title: str
    svg: Markup


@dataclass(frozen=True)
class SpectrumView:
    """The latest snapshot drawn two ways, with what the markers were computed from."""

    point: str
    taken_at: datetime
    sample_rate_hz: float
    n_samples: int
    shaft_hz: float | None
    envelope_band_hz: tuple[float, float]
    spectrum_svg: Markup
    envelope_svg: Markup


def bearing_of(asset: Asset, point: str) -> BearingGeometry | None:
    """The geometry of the bearing under one of the asset's points, or None if unknown."""
    bearing = asset.physics.bearing_at(point) if asset.physics is not None else None
    return bearing.geometry() if bearing is not None else None


def order_markers(shaft_hz: float | None) -> list[FreqMarker]:
    """1×, 2×, 3× running speed: unbalance, misalignment, looseness live there."""
    if shaft_hz is None or not math.isfinite(shaft_hz) or shaft_hz <= 0:
        return []
    return [FreqMarker(k * shaft_hz, f"{k}×", "order") for k in _HARMONICS]


def defect_markers(bearing: BearingLike | None, shaft_hz: float | None) -> list[FreqMarker]:
    """BPFO, BPFI, BSF, FTF and their 2nd and 3rd harmonics for the envelope spectrum."""
    if bearing is None or shaft_hz is None or not math.isfinite(shaft_hz) or shaft_hz <= 0:
        return []
    orders = defect_orders(bearing)
    out: list[FreqMarker] = []
    for name, order in zip(orders._fields, orders, strict=True):
        base = order * shaft_hz
        for k in _HARMONICS:
            label = name.upper() if k == 1 else f"{k}×{name.upper()}"
            out.append(FreqMarker(k * base, label, f"defect {name}"))
    return out


def _series_for(frame: FeatureFrame, feature: str, label: str, css_start: int) -> list[Series]:
    values = frame.column(feature)
    points = sorted({str(p) for p in frame.points.tolist()})
    out: list[Series] = []
    for i, point in enumerate(points):
        rows = (frame.points == point) & np.isfinite(values)
        if not rows.any():
            continue
        name = label if len(points) == 1 else f"{label} · {point}"
        out.append(Series(name, frame.ts_s[rows], values[rows], f"s{(css_start + i) % 4}"))
    return out


def _concat(parts: Sequence[FeatureFrame], features: Sequence[str]) -> FeatureFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return FeatureFrame.empty(features)
    return FeatureFrame(
        gateway_ids=np.concatenate([p.gateway_ids for p in parts]),
        seqs=np.concatenate([p.seqs for p in parts]),
        asset_ids=np.concatenate([p.asset_ids for p in parts]),
        points=np.concatenate([p.points for p in parts]),
        ts_ns=np.concatenate([p.ts_ns for p in parts]),
        window_s=np.concatenate([p.window_s for p in parts]),
        stale=np.concatenate([p.stale for p in parts]),
        values=np.concatenate([p.values for p in parts]),
        feature_names=tuple(features),
    )


def _sampled_query(
    store: TelemetryReader, asset_id: str, start: datetime, end: datetime, features: list[str]
) -> FeatureFrame:
    """A bounded sample of a long period: the first rows of equal slices, per point.

    A week at one record a second is 600 k rows, seconds to load for a chart a few hundred
    pixels wide, and the store has no downsampling query. Slices are read per point: the
    store's index is (asset, point, time), so a slice with a point is a short range scan.
    """
    edges = [start + (end - start) * i / SAMPLE_SLICES for i in range(SAMPLE_SLICES + 1)]
    per_slice = max(SAMPLE_ROWS // SAMPLE_SLICES, 1)
    probe_start = max(start, end - timedelta(hours=6))
    probes = [
        store.query(
            asset_ids=[asset_id],
            start=edges[0],
            end=edges[1],
            features=features[:1],
            limit=per_slice,
        ),
        store.query(asset_ids=[asset_id], start=probe_start, end=end, features=features[:1]),
    ]
    points = sorted({str(p) for frame in probes for p in frame.points.tolist()})
    if not points:
        # Nothing at either end of the period: read it whole rather than miss what is between.
        return store.query(asset_ids=[asset_id], start=start, end=end, features=features)
    parts = [
        store.query(
            asset_ids=[asset_id], point=point, start=a, end=b, features=features, limit=per_slice
        )
        for point in points
        for a, b in itertools.pairwise(edges)
    ]
    return _concat(parts, features)


def trend_panels(
    store: TelemetryReader,
    asset: Asset,
    start: datetime,
    end: datetime,
    onsets: Sequence[TimeMarker],
) -> list[Panel]:
    """One chart per trend panel; velocity gets the asset's ISO zone bands."""
    features = [f for *_, pairs in TREND_PANELS for f, _ in pairs]
    try:
        if end - start > FULL_RESOLUTION_SPAN:
            frame = _sampled_query(store, asset.id, start, end, features)
        else:
            frame = store.query(asset_ids=[asset.id], start=start, end=end, features=features)
    except TelemetryError as err:
        message = _("telemetry store unavailable: %(error)s") % {"error": err}
        return [Panel(_("Trends"), empty_chart(_("Trends"), message))]
    panels: list[Panel] = []
    for title, unit, zero_based, pairs in TREND_PANELS:
        series: list[Series] = []
        for j, (feature, label) in enumerate(pairs):
            series.extend(_series_for(frame, feature, _(label), j))
        is_velocity = pairs[0][0] == "velocity_rms_mms"
        bands = zone_bands(*iso_class(asset.physics)) if is_velocity else ()
        chart = trend_chart(
            series, title=_(title), unit=unit, bands=bands, markers=onsets, zero_based=zero_based
        )
        panels.append(Panel(_(title), chart))
    return panels


def spectrum_view(snapshot: WaveformSnapshot, asset: Asset) -> SpectrumView:
    """Spectrum (shaft orders marked) and envelope spectrum (defect tones marked)."""
    samples = np.asarray(snapshot.samples(), dtype=np.float64)
    fs = float(snapshot.sample_rate_hz)
    speed_rpm = snapshot.speed_rpm or (asset.physics.speed_rpm if asset.physics else None)
    shaft_hz = rpm_to_hz(speed_rpm) if speed_rpm else None
    nyquist = fs / 2.0
    band = envelope_band_hz(fs)
    freqs, amps = spectrum(samples, fs)
    env_freqs, env_amps = envelope_spectrum(samples, fs, band)
    bearing = bearing_of(asset, snapshot.point)
    defects = defect_markers(bearing, shaft_hz)
    # Enough range for ten shaft orders (looseness) and the third BPFI harmonic.
    spec_max = min(nyquist, max(20.0 * (shaft_hz or 10.0), 200.0))
    top_defect = max((m.freq_hz for m in defects), default=0.0)
    env_max = min(nyquist, max(top_defect * 1.1, 10.0 * (shaft_hz or 10.0), 100.0))
    return SpectrumView(
        point=snapshot.point,
        taken_at=snapshot.ts,
        sample_rate_hz=fs,
        n_samples=int(samples.size),
        shaft_hz=shaft_hz,
        envelope_band_hz=band,
        spectrum_svg=spectrum_chart(
            freqs,
            amps,
            title=_("Spectrum"),
            unit="m/s²",
            markers=order_markers(shaft_hz),
            f_max_hz=spec_max,
        ),
        envelope_svg=spectrum_chart(
            env_freqs,
            env_amps,
            title=_("Envelope spectrum"),
            unit="m/s²",
            markers=[*order_markers(shaft_hz)[:1], *defects],
            f_max_hz=env_max,
        ),
    )


def velocity_sparkline(health: AssetHealth) -> Markup:
    """The fleet card's picture: recent velocity over the asset's ISO zones."""
    trace = health.velocity_trace
    minutes = int(LATEST_WINDOW.total_seconds() // 60)
    title = _("Velocity RMS, last %(minutes)d min") % {"minutes": minutes}
    bands = zone_bands(*iso_class(health.asset.physics))
    if trace is None:
        return sparkline(np.zeros(0), np.zeros(0), title=title, unit="mm/s", bands=bands)
    return sparkline(trace.ts_s, trace.values, title=title, unit="mm/s", bands=bands)
