"""Bearing geometry: validation and the standard defect-frequency formulas."""

from __future__ import annotations

import math

import pytest

from models.bearing import SKF_6205, BearingGeometry


def test_skf_6205_matches_cwru_published_multiples() -> None:
    # Multiples published with the CWRU data set (shared/datasets/cwru/*.json).
    orders = SKF_6205.defect_orders()
    assert orders.bpfi == pytest.approx(5.4152, abs=5e-4)
    assert orders.bpfo == pytest.approx(3.5848, abs=5e-4)
    assert orders.ftf == pytest.approx(0.39828, abs=5e-4)
    assert orders.bsf == pytest.approx(2.357, abs=5e-4)


def test_bpfo_plus_bpfi_equals_number_of_balls() -> None:
    g = BearingGeometry(
        n_balls=12, ball_diameter_mm=10.0, pitch_diameter_mm=55.0, contact_angle_deg=15.0
    )
    orders = g.defect_orders()
    assert orders.bpfo + orders.bpfi == pytest.approx(12.0)
    assert orders.ftf * 12 == pytest.approx(orders.bpfo)


def test_contact_angle_moves_frequencies_toward_the_no_ball_limit() -> None:
    flat = BearingGeometry(9, 7.94, 39.04, 0.0).defect_orders()
    angled = BearingGeometry(9, 7.94, 39.04, 40.0).defect_orders()
    assert angled.bpfo > flat.bpfo
    assert angled.bpfi < flat.bpfi


def test_defect_frequencies_scale_with_shaft_speed() -> None:
    hz = SKF_6205.defect_frequencies(29.95)
    assert hz.bpfo == pytest.approx(3.5848 * 29.95, rel=1e-4)
    assert hz.bpfi == pytest.approx(5.4152 * 29.95, rel=1e-4)
    with pytest.raises(ValueError):
        SKF_6205.defect_frequencies(0.0)
    with pytest.raises(ValueError):
        SKF_6205.defect_frequencies(math.nan)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_balls": 2, "ball_diameter_mm": 5.0, "pitch_diameter_mm": 30.0},
        {"n_balls": 9.0, "ball_diameter_mm": 5.0, "pitch_diameter_mm": 30.0},
        {"n_balls": True, "ball_diameter_mm": 5.0, "pitch_diameter_mm": 30.0},
        {"n_balls": 9, "ball_diameter_mm": 0.0, "pitch_diameter_mm": 30.0},
        {"n_balls": 9, "ball_diameter_mm": 30.0, "pitch_diameter_mm": 30.0},
        {"n_balls": 9, "ball_diameter_mm": math.inf, "pitch_diameter_mm": 30.0},
        {
            "n_balls": 9,
            "ball_diameter_mm": 5.0,
            "pitch_diameter_mm": 30.0,
            "contact_angle_deg": 90.0,
        },
        {
            "n_balls": 9,
            "ball_diameter_mm": 5.0,
            "pitch_diameter_mm": 30.0,
            "contact_angle_deg": -1.0,
        },
    ],
)
def test_nonsense_geometry_is_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BearingGeometry(**kwargs)  # type: ignore[arg-type]


def test_geometry_is_frozen_and_hashable() -> None:
    with pytest.raises(AttributeError):
        SKF_6205.n_balls = 8  # type: ignore[misc]
    assert {SKF_6205: 1}[BearingGeometry(9, 7.94, 39.04)] == 1
