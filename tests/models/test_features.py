"""Shared feature extraction: analytic values, vectorisation and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from models.bearing import SKF_6205
from models.features import (
    FEATURE_NAMES,
    envelope_spectrum,
    extract_features,
    spectrum,
    temperature_features,
)

FS = 25_600.0
UNIT_SUFFIXES = ("_ms2", "_mms", "_c", "_c_per_h", "_hz", "_rpm")
DIMENSIONLESS = {"crest_factor", "kurtosis", "skewness"}


def sine(amplitude: float, freq_hz: float, n: int = 25_600, phase: float = 0.3) -> np.ndarray:
    t = np.arange(n) / FS
    return amplitude * np.sin(2 * np.pi * freq_hz * t + phase)


def bearing_signal(defect_hz: float, seed: int = 0, n: int = 25_600) -> np.ndarray:
    """Impacts at ``defect_hz`` ringing a 3 kHz resonance, plus white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    impulses = np.zeros(n)
    impulses[(np.arange(0.0, n / FS, 1.0 / defect_hz) * FS).astype(int)] = 1.0
    ring = np.exp(-800.0 * t[:300]) * np.sin(2 * np.pi * 3000.0 * t[:300])
    return 50.0 * np.convolve(impulses, ring)[:n] + rng.normal(0.0, 0.5, n)


def test_feature_names_carry_units() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    for name in FEATURE_NAMES:
        assert name in DIMENSIONLESS or name.endswith(UNIT_SUFFIXES), name


@pytest.mark.parametrize("freq_hz", [50.0, 125.0, 400.0])
def test_pure_sine_gives_analytic_statistics(freq_hz: float) -> None:
    a = 3.0
    f = extract_features(sine(a, freq_hz), FS, shaft_hz=freq_hz)
    assert set(f) == set(FEATURE_NAMES)
    assert f["accel_rms_ms2"] == pytest.approx(a / math.sqrt(2), rel=1e-3)
    assert f["accel_peak_ms2"] == pytest.approx(a, rel=1e-3)
    assert f["crest_factor"] == pytest.approx(math.sqrt(2), rel=2e-3)
    assert f["kurtosis"] == pytest.approx(1.5, rel=2e-3)
    assert f["skewness"] == pytest.approx(0.0, abs=1e-2)
    expected_mms = a / (2 * math.pi * freq_hz) * 1000 / math.sqrt(2)
    assert f["velocity_rms_mms"] == pytest.approx(expected_mms, rel=1e-2)
    assert f["order_1x_ms2"] == pytest.approx(a, rel=1e-2)
    assert f["order_2x_ms2"] < 0.01 * a
    assert f["band_0k_1k_rms_ms2"] == pytest.approx(a / math.sqrt(2), rel=1e-2)
    assert f["band_2k_4k_rms_ms2"] < 1e-3


def test_velocity_ignores_frequencies_below_the_iso_band() -> None:
    a, f_hz = 3.0, 5.0
    f = extract_features(sine(a, f_hz), FS)
    in_band_equivalent = a / (2 * math.pi * f_hz) * 1000 / math.sqrt(2)
    assert f["velocity_rms_mms"] < 1e-3 * in_band_equivalent


def test_velocity_of_off_bin_tone_is_independent_of_window_length() -> None:
    a, f_hz = 2.0, 157.3
    expected = a / (2 * math.pi * f_hz) * 1000 / math.sqrt(2)
    for n in (16_384, 25_600, 40_000):
        f = extract_features(sine(a, f_hz, n=n), FS)
        assert f["velocity_rms_mms"] == pytest.approx(expected, rel=1e-2)


def test_bands_above_nyquist_are_nan() -> None:
    f = extract_features(sine(1.0, 100.0, n=12_000), 12_000.0)
    assert math.isnan(float(f["band_8k_12k_rms_ms2"]))
    assert math.isnan(float(f["band_4k_8k_rms_ms2"]))
    assert math.isfinite(float(f["band_2k_4k_rms_ms2"]))


def test_speed_and_bearing_dependent_features_are_nan_without_them() -> None:
    f = extract_features(sine(1.0, 100.0), FS)
    for name in FEATURE_NAMES:
        if name.startswith(("env_", "order_")):
            assert math.isnan(float(f[name])), name
    g = extract_features(sine(1.0, 100.0), FS, shaft_hz=25.0)
    assert math.isfinite(float(g["order_1x_ms2"]))
    assert math.isnan(float(g["env_bpfo_ms2"]))


def test_outer_race_impacts_show_at_bpfo_in_the_envelope() -> None:
    shaft = 29.95
    orders = SKF_6205.defect_orders()
    # The real speed is 0.5 % off the nominal one: the tolerance window must still find it.
    f = extract_features(
        bearing_signal(orders.bpfo * shaft * 1.005), FS, shaft_hz=shaft, bearing=SKF_6205
    )
    assert f["env_bpfo_ms2"] > 20 * f["env_bpfi_ms2"]
    assert f["env_bpfo_ms2"] > 20 * f["env_bsf_ms2"]
    assert f["kurtosis"] > 5


def test_inner_race_impacts_show_at_bpfi_in_the_envelope() -> None:
    shaft = 25.0
    f = extract_features(
        bearing_signal(SKF_6205.defect_orders().bpfi * shaft), FS, shaft_hz=shaft, bearing=SKF_6205
    )
    assert f["env_bpfi_ms2"] > 20 * f["env_bpfo_ms2"]


def test_vectorised_equals_per_window() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3, 4096)) + bearing_signal(110.0, n=4096)
    speeds = np.array([[24.0], [25.0], [30.0], [31.5]])
    batch = extract_features(x, FS, shaft_hz=speeds, bearing=SKF_6205)
    for i in range(4):
        for j in range(3):
            one = extract_features(x[i, j], FS, shaft_hz=float(speeds[i, 0]), bearing=SKF_6205)
            for name in FEATURE_NAMES:
                assert batch[name].shape == (4, 3)
                np.testing.assert_allclose(
                    batch[name][i, j], one[name], rtol=1e-10, atol=1e-12, err_msg=name
                )


def test_spectrum_helpers_locate_tones() -> None:
    freqs, amp = spectrum(sine(2.0, 250.0), FS)
    assert freqs[np.argmax(amp)] == pytest.approx(250.0)
    assert amp.max() == pytest.approx(2.0, rel=1e-3)
    env_f, env_amp = envelope_spectrum(bearing_signal(107.0), FS)
    sel = env_f > 5
    assert env_f[sel][np.argmax(env_amp[sel])] == pytest.approx(107.0, abs=1.5)
    with pytest.raises(ValueError):
        envelope_spectrum(np.zeros(1024), FS, band=(5000.0, 20_000.0))


def test_constant_window_gives_nan_shape_statistics_without_warnings() -> None:
    f = extract_features(np.full(1024, 9.81), FS)
    assert f["accel_rms_ms2"] == 0.0
    assert math.isnan(float(f["crest_factor"]))
    assert math.isnan(float(f["kurtosis"]))


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError):
        extract_features(np.zeros(2), FS)
    with pytest.raises(ValueError):
        extract_features(np.zeros(1024), 0.0)
    with pytest.raises(ValueError):
        extract_features(np.zeros((3, 1024)), FS, shaft_hz=np.ones(4))


def test_temperature_features() -> None:
    times = np.arange(0.0, 3600.0, 60.0)
    temps = np.stack([40.0 + 2.0 * times / 3600.0, np.full(times.size, 55.0)])
    temps[1, 5] = np.nan
    f = temperature_features(temps, times)
    np.testing.assert_allclose(f["temperature_slope_c_per_h"], [2.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(f["temperature_max_c"], [temps[0].max(), 55.0])
    np.testing.assert_allclose(f["temperature_c"], [temps[0].mean(), 55.0])
    assert math.isnan(float(temperature_features(temps[0])["temperature_slope_c_per_h"]))


window_arrays = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3).map(lambda s: (*s, 256)),
    elements=st.floats(-100.0, 100.0, allow_nan=False, width=64),
)


@settings(max_examples=40, deadline=None)
@given(x=window_arrays, shaft=st.floats(5.0, 200.0))
def test_properties_shape_and_finiteness(x: np.ndarray, shaft: float) -> None:
    # Broadband noise keeps every window non-degenerate.
    noisy = x + np.random.default_rng(0).normal(size=x.shape)
    f = extract_features(noisy, 8192.0, shaft_hz=shaft, bearing=SKF_6205)
    for name in FEATURE_NAMES:
        assert f[name].shape == x.shape[:-1]
        assert f[name].dtype == np.float64
        if not name.startswith("band_"):
            assert np.all(np.isfinite(f[name])), name


@settings(max_examples=40, deadline=None)
@given(x=window_arrays, scale=st.floats(1e-3, 1e3))
def test_properties_shape_statistics_are_scale_invariant(x: np.ndarray, scale: float) -> None:
    noisy = x + np.random.default_rng(0).normal(size=x.shape)
    a = extract_features(noisy, 8192.0)
    b = extract_features(noisy * scale, 8192.0)
    for name in ("crest_factor", "kurtosis", "skewness"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b["accel_rms_ms2"], a["accel_rms_ms2"] * scale, rtol=1e-9)
