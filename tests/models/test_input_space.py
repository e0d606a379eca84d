"""Models over their whole input space: no exception for any valid machine or signal.

A model that raises for one machine's physics stops that machine's scoring, so
diagnosis, the features and the RUL estimator are exercised over every sample rate
(5–51.2 kHz), speed (60–12,000 rpm), record and window length, valid bearing geometry
and signal shape (noise, impacts, constant, zero, clipped) a real sensor can produce.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.bearing import SKF_6205, BearingGeometry
from models.diagnosis import Diagnosis, Fault, diagnose
from models.features import FEATURE_NAMES, extract_features
from models.rul import ExponentialDegradation

sample_rates = st.one_of(
    st.sampled_from([5_000.0, 8_192.0, 10_000.0, 12_000.0, 12_800.0, 20_000.0, 20_480.0,
                     25_600.0, 48_000.0, 51_200.0]),
    st.floats(5_000.0, 51_200.0),
)
speeds_rpm = st.floats(60.0, 12_000.0)


@st.composite
def geometries(draw: st.DrawFn) -> BearingGeometry:
    """Any bearing BearingGeometry accepts: 3+ balls, pitch > ball, contact angle in [0, 90)."""
    ball = draw(st.floats(0.5, 120.0))
    return BearingGeometry(
        n_balls=draw(st.integers(3, 60)),
        ball_diameter_mm=ball,
        pitch_diameter_mm=ball * draw(st.floats(1.01, 20.0)),
        contact_angle_deg=draw(st.floats(0.0, 89.9)),
    )


@st.composite
def records(draw: st.DrawFn, fs: float, max_s: float = 1.0) -> np.ndarray:
    """A finite acceleration record: noise, impacts, a sine, constant, zero or clipped."""
    n = draw(st.integers(4, max(4, int(fs * max_s))))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["noise", "impacts", "sine", "constant", "zero", "clipped"]))
    level = draw(st.floats(1e-6, 1e3))
    t = np.arange(n) / fs
    if kind == "constant":
        return np.full(n, level)
    if kind == "zero":
        return np.zeros(n)
    x = level * rng.normal(size=n)
    if kind == "impacts":
        x[:: max(1, n // 37)] += 50.0 * level
    elif kind == "sine":
        x = level * np.sin(2 * np.pi * draw(st.floats(1.0, fs / 2)) * t)
    elif kind == "clipped":
        x = np.clip(10.0 * x, -level, level)
    return x


def _check(d: Diagnosis) -> None:
    assert isinstance(d.fault, Fault)
    assert 0.0 <= d.confidence <= 1.0
    assert math.isfinite(d.velocity_rms_mms) and d.velocity_rms_mms >= 0.0
    assert all(0.0 <= f.confidence <= 1.0 for f in d.findings)


@settings(max_examples=150)
@given(data=st.data(), fs=sample_rates, rpm=speeds_rpm,
       window_s=st.floats(0.01, 2.0), group=st.sampled_from([1, 2]),
       foundation=st.sampled_from(["rigid", "flexible"]),
       with_bearing=st.booleans())
def test_diagnose_never_raises_on_valid_input(
    data: st.DataObject, fs: float, rpm: float, window_s: float, group: int, foundation: str,
    with_bearing: bool,
) -> None:
    x = data.draw(records(fs))
    bearing = data.draw(geometries()) if with_bearing else None
    _check(diagnose(x, fs, shaft_hz=rpm / 60.0, bearing=bearing, machine_group=group,
                    foundation=foundation, window_s=window_s))  # type: ignore[arg-type]


@settings(max_examples=100)
@given(data=st.data(), fs=sample_rates, rpm=speeds_rpm, bearing=geometries(),
       channels=st.integers(1, 4), known_speed=st.booleans())
def test_features_are_defined_for_every_valid_window(
    data: st.DataObject, fs: float, rpm: float, bearing: BearingGeometry, channels: int,
    known_speed: bool,
) -> None:
    x = np.vstack([data.draw(records(fs, max_s=0.5)) for _ in range(1)] * channels)
    features = extract_features(x, fs, shaft_hz=rpm / 60.0 if known_speed else None,
                                bearing=bearing)
    assert set(features) == set(FEATURE_NAMES)
    for name, values in features.items():
        assert values.shape == (channels,)
        # Missing is NaN (a band above Nyquist, an order without a speed), never ±inf.
        assert not np.isinf(values).any(), name
    assert np.isfinite(features["accel_rms_ms2"]).all()
    assert np.isfinite(features["velocity_rms_mms"]).all()


@settings(max_examples=200)
@given(
    n=st.integers(2, 300),
    span_h=st.floats(1e-3, 1e4),
    healthy=st.floats(0.05, 5.0),
    growth=st.floats(-5.0, 5.0),
    noise=st.floats(0.0, 2.0),
    gaps=st.floats(0.0, 0.5),
    phi_known=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_rul_is_an_estimate_or_a_documented_value_error(
    n: int, span_h: float, healthy: float, growth: float, noise: float, gaps: float,
    phi_known: bool, seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, span_h, n))
    hi = healthy * np.exp(growth * t / span_h) * np.exp(noise * rng.normal(size=n))
    hi[rng.random(n) < gaps] = np.nan  # missing readings
    model = ExponentialDegradation(threshold=7.1, phi=healthy if phi_known else None)
    try:
        estimate = model.fit(t, hi).predict_rul()
    except ValueError as err:
        # Documented: fewer than two finite readings at distinct times, or already past
        # the failure level before any trend (threshold <= phi).
        finite = np.isfinite(hi)
        assert finite.sum() < 2 or np.ptp(t[finite]) <= 0 or "threshold" in str(err)
        return
    assert 0.0 <= estimate.lower <= estimate.median <= estimate.upper
    assert not math.isnan(estimate.median)
    assert 0.0 <= estimate.probability_failed <= 1.0


def _outer_race(fs: float, rpm: float, seconds: float, bearing: BearingGeometry) -> np.ndarray:
    rng = np.random.default_rng(0)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    bpfo = bearing.defect_frequencies(rpm / 60.0).bpfo
    x = np.zeros(n)
    x[(np.arange(0.0, seconds, 1.0 / bpfo) * fs).astype(int)] = 1.0
    ring = np.exp(-600.0 * t[:240]) * np.sin(2 * np.pi * 3000.0 * t[:240])
    return 20.0 * np.convolve(x, ring)[:n] + rng.normal(0.0, 0.5, n)


@pytest.mark.parametrize(
    ("fs", "rpm", "seconds", "expected"),
    [
        (12_000.0, 2975.0, 2.0, {Fault.BEARING_OUTER_RACE}),
        (20_000.0, 2000.0, 2.0, {Fault.BEARING_OUTER_RACE}),
        # One second holds too few impacts to name the family; never "healthy" though.
        (12_000.0, 2975.0, 1.0, {Fault.BEARING_OUTER_RACE, Fault.UNEXPLAINED}),
    ],
)
def test_reported_speeds_and_rates_diagnose_the_outer_race(
    fs: float, rpm: float, seconds: float, expected: set[Fault]
) -> None:
    """Cases that used to raise IndexError (envelope spectrum shorter than its frequencies)."""
    x = _outer_race(fs, rpm, seconds, SKF_6205)
    d = diagnose(x, fs, shaft_hz=rpm / 60.0, bearing=SKF_6205)
    assert d.fault in expected


def test_four_channel_20khz_sensor_at_2000_rpm() -> None:
    bearing = BearingGeometry(16, 8.4, 71.5, 15.17)
    channels = np.random.default_rng(4).normal(size=(4, 20_480))
    for x in channels:
        _check(diagnose(x, 20_000.0, shaft_hz=2000.0 / 60.0, bearing=bearing))
    features = extract_features(channels, 20_000.0, shaft_hz=2000.0 / 60.0, bearing=bearing)
    assert np.isnan(features["band_8k_12k_rms_ms2"]).all()  # above Nyquist: missing, not 0
    assert np.isfinite(features["env_bpfo_ms2"]).all()


def test_an_absurd_shaft_speed_reads_as_nothing_found_not_gigabytes() -> None:
    """A snapshot header may carry any speed: lines above Nyquist are just not there."""
    x = np.random.default_rng(2).normal(size=20_000)
    d = diagnose(x, 20_000.0, shaft_hz=1e6, bearing=SKF_6205)
    assert d.fault is Fault.NONE
    assert all(math.isnan(v) for f in d.findings for k, v in f.evidence.items()
               if k.startswith("ratio_"))
