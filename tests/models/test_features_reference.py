"""The fast edge features give the reference implementation's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from ironwatch_testing.reference_features import reference_extract_features
from models.bearing import SKF_6205
from models.features import FEATURE_NAMES, extract_features
from simulators import BEARINGS, Machine, MachineSpec
from simulators.spec import FaultMode

FS = 25_600.0


def assert_same_features(
    x: NDArray[np.float64], fs: float, shaft_hz: object, bearing: object
) -> None:
    kwargs = {"shaft_hz": shaft_hz, "bearing": bearing}
    fast = extract_features(x, fs, **kwargs)  # type: ignore[arg-type]
    ref = reference_extract_features(x, fs, **kwargs)  # type: ignore[arg-type]
    assert list(fast) == list(FEATURE_NAMES)
    for name in FEATURE_NAMES:
        assert fast[name].shape == ref[name].shape, name
        np.testing.assert_array_equal(np.isnan(fast[name]), np.isnan(ref[name]), err_msg=name)
        np.testing.assert_allclose(fast[name], ref[name], rtol=1e-10, atol=0.0, err_msg=name)


@pytest.mark.parametrize(
    ("fs", "n", "shaft_hz"),
    [
        (25_600.0, 16_384, 24.7),
        (25_600.0, 4_096, np.array([10.0, 50.0, np.nan, 0.0])),  # per window, some unknown
        (5_000.0, 1_001, 2_400.0),  # targets beyond Nyquist
        (12_000.0, 257, None),
    ],
)
@pytest.mark.parametrize("with_bearing", [False, True])
def test_random_signals_give_the_reference_features(
    fs: float, n: int, shaft_hz: object, with_bearing: bool
) -> None:
    rng = np.random.default_rng(n)
    # Heavy-tailed noise with a tone and an offset, at different levels per window.
    t = np.arange(n) / fs
    x = (
        rng.standard_t(4, (4, n)) * rng.uniform(0.01, 20.0, (4, 1))
        + 3.0 * np.sin(2 * np.pi * 37.0 * t)
        + 9.81
    )
    assert_same_features(x, fs, shaft_hz, SKF_6205 if with_bearing else None)


@pytest.mark.parametrize("fault", [FaultMode.OUTER_RACE, FaultMode.INNER_RACE])
def test_simulated_machines_give_the_reference_features(fault: FaultMode) -> None:
    spec = MachineSpec(fault=fault, bearing=BEARINGS["6205"], speed_rpm=1480.0,
                       onset_h=100, failure_h=400, seed=1, start_age_h=300)
    x = Machine(spec).render(3 * 16_384).reshape(-1, 3, 16_384)  # channels × windows
    assert_same_features(x, FS, spec.shaft_hz, BEARINGS["6205"])
