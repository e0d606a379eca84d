"""Asset physics: the one bearing validation, the speed unit, points, and differences."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ironwatch.physics import (
    AssetPhysics,
    BearingSpec,
    MeasurementPoint,
    iso_class,
    rpm_to_hz,
)
from models.bearing import BearingGeometry, defect_orders

_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=0.5, max_value=300.0),
    st.integers(min_value=-3, max_value=400),
    st.booleans(),
)
_counts = st.one_of(st.integers(min_value=-2, max_value=60), st.floats(0, 60), st.booleans())


def _valid(n: Any, bd: Any, pd: Any, angle: Any) -> bool:
    """The rule written out plainly, as the oracle the type is checked against."""

    def number(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

    return (
        isinstance(n, int) and not isinstance(n, bool) and n >= 3
        and number(bd) and number(pd) and number(angle)
        and bd > 0 and pd > bd and 0 <= angle < 90
    )


@given(n=_counts, bd=_numbers, pd=_numbers, angle=_numbers)
def test_one_validation_accepts_exactly_the_physical_geometries(
    n: Any, bd: Any, pd: Any, angle: Any
) -> None:
    kwargs = {"n_balls": n, "ball_diameter_mm": bd, "pitch_diameter_mm": pd,
              "contact_angle_deg": angle}
    try:
        spec = BearingSpec(**kwargs)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == _valid(n, bd, pd, angle)
    # The models' own constructor keeps the same rule: the two can never drift apart.
    try:
        BearingGeometry(**kwargs)
    except ValueError:
        models_accept = False
    else:
        models_accept = True
    assert models_accept == accepted
    if accepted:
        orders = defect_orders(spec.geometry())
        assert all(math.isfinite(o) and o > 0 for o in (orders.bpfo, orders.bpfi, orders.ftf))
        assert orders.bsf > 0  # infinite only for a ball vanishingly small beside its pitch
        assert orders.bpfo + orders.bpfi == pytest.approx(n)
        assert tuple(spec.geometry()) == (n, float(bd), float(pd), float(angle))


def test_pitch_not_exceeding_ball_is_named_with_both_values() -> None:
    with pytest.raises(ValidationError, match=r"pitch_diameter_mm \(30\) must exceed "
                                              r"ball_diameter_mm \(30\)"):
        BearingSpec(n_balls=9, ball_diameter_mm=30.0, pitch_diameter_mm=30.0)


def test_geometry_feeds_the_models_as_is() -> None:
    spec = BearingSpec(n_balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04,
                       designation="SKF 6205")
    orders = defect_orders(spec.geometry())
    assert orders.bpfo == pytest.approx(3.5848, abs=5e-4)
    assert orders == BearingGeometry(9, 7.94, 39.04).defect_orders()


def test_json_numbers_are_not_coerced_from_strings_or_fractions() -> None:
    with pytest.raises(ValidationError, match="valid integer"):
        BearingSpec.model_validate_json(
            '{"n_balls": 9.5, "ball_diameter_mm": 5, "pitch_diameter_mm": 30}'
        )
    with pytest.raises(ValidationError, match="valid number"):
        BearingSpec.model_validate_json(
            '{"n_balls": 9, "ball_diameter_mm": "5", "pitch_diameter_mm": 30}'
        )


def test_speed_is_rpm_and_converted_to_hz_once() -> None:
    physics = AssetPhysics(speed_rpm=1500.0, points=("de",))
    assert physics.shaft_hz == rpm_to_hz(1500.0) == 25.0
    assert AssetPhysics().shaft_hz is None  # not known yet: nothing is made up
    for bad in (0.0, -1.0, math.nan, math.inf, 1e9):
        with pytest.raises(ValidationError, match="speed_rpm"):
            AssetPhysics(speed_rpm=bad)


def test_points_by_id_are_unique_and_carry_their_bearing() -> None:
    bearing = BearingSpec(n_balls=8, ball_diameter_mm=17.46, pitch_diameter_mm=72.5)
    physics = AssetPhysics(
        speed_rpm=1480, points=["de_radial", {"id": "nde_radial", "bearing": bearing}]
    )
    assert physics.point_ids == ("de_radial", "nde_radial")
    assert physics.points[0] == MeasurementPoint(id="de_radial")
    assert physics.bearing_at("nde_radial") == bearing
    assert physics.bearing_at("de_radial") is None and physics.bearing_at("nope") is None
    with pytest.raises(ValidationError, match="unique"):
        AssetPhysics(speed_rpm=1480, points=["de", "de"])
    with pytest.raises(ValidationError, match="ids are 1-64"):
        AssetPhysics(speed_rpm=1480, points=["bad id"])


def test_round_trip_through_json_is_identity() -> None:
    physics = AssetPhysics(
        speed_rpm=2975.5, iso_group=1, foundation="flexible",
        points=[{"id": "de", "description": "drive end",
                 "bearing": {"n_balls": 13, "ball_diameter_mm": 17.46,
                             "pitch_diameter_mm": 80.0, "contact_angle_deg": 40.0}}],
    )
    assert AssetPhysics.model_validate_json(physics.model_dump_json()) == physics


def test_differences_name_each_field_that_disagrees() -> None:
    ours = AssetPhysics(
        speed_rpm=1480, iso_group=2,
        points=[{"id": "de", "bearing": {"n_balls": 9, "ball_diameter_mm": 7.94,
                                         "pitch_diameter_mm": 39.04}}, "nde"],
    )
    theirs = AssetPhysics(
        speed_rpm=1480.0, iso_group=1, foundation="rigid",
        points=[{"id": "de", "bearing": {"n_balls": 8, "ball_diameter_mm": 7.94,
                                         "pitch_diameter_mm": 39.04}}, "fan_end"],
    )
    diffs = {d.field: (d.ours, d.theirs) for d in ours.differences(theirs)}
    # foundation is unknown on our side: not a contradiction.
    assert diffs.keys() == {
        "iso_group", "points.de.bearing.n_balls", "points.nde", "points.fan_end"
    }
    assert diffs["iso_group"] == (2, 1) and diffs["points.de.bearing.n_balls"] == (9, 8)
    assert diffs["points.nde"][1] is None and diffs["points.fan_end"][0] is None
    assert ours.differences(ours) == []


def test_unstated_iso_class_is_judged_by_the_strictest_row() -> None:
    assert iso_class(None) == (2, "rigid")
    assert iso_class(AssetPhysics(speed_rpm=990, foundation="flexible")) == (2, "flexible")
    assert iso_class(AssetPhysics(speed_rpm=990, iso_group=1)) == (1, "rigid")


def test_unknowns_are_completed_from_the_other_description() -> None:
    ours = AssetPhysics(iso_group=1, points=["de", "nde"])
    theirs = AssetPhysics(
        speed_rpm=2975, iso_group=2, foundation="flexible",
        points=[{"id": "de", "bearing": {"n_balls": 8, "ball_diameter_mm": 17.46,
                                         "pitch_diameter_mm": 72.5}}],
    )
    done = ours.completed_by(theirs)
    assert (done.speed_rpm, done.iso_group, done.foundation) == (2975, 1, "flexible")
    assert done.point_ids == ("de", "nde")
    assert done.bearing_at("de") == theirs.bearing_at("de") and done.bearing_at("nde") is None
    assert AssetPhysics().completed_by(theirs) == theirs
    assert theirs.completed_by(AssetPhysics()) == theirs


def test_gateway_config_and_fleet_file_refuse_the_same_bearing_the_same_way() -> None:
    from cloud.db import Base, make_engine, make_session_factory
    from cloud.domain.errors import InvalidInputError
    from cloud.domain.registry import seed_fleet
    from edge_agent import ConfigError
    from edge_agent.config import parse_config

    bad = {"n_balls": 9, "ball_diameter_mm": 40.0, "pitch_diameter_mm": 39.04}
    physics = {"speed_rpm": 1480, "points": [{"id": "de", "bearing": bad}]}
    why = "pitch_diameter_mm (39.04) must exceed ball_diameter_mm (40)"
    with pytest.raises(ConfigError) as gateway:
        parse_config({
            "gateway_id": "gw-1",
            "assets": [{"asset_id": "pump-1", **physics}],
            "serial": [{"port": "/dev/null",
                        "channels": [{"channel": 0, "asset_id": "pump-1", "point": "de"}]}],
        }, "gw.toml")
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as session, pytest.raises(InvalidInputError) as fleet:
        seed_fleet(session, {"gateways": [{"id": "gw-1"}], "assets": [
            {"id": "pump-1", "gateway_id": "gw-1", "physics": physics}]})
    engine.dispose()
    assert str(gateway.value) == f"gw.toml: assets.0.points.0.bearing: {why}"
    assert str(fleet.value) == f"invalid fleet file fleet: assets.0.physics.points.0.bearing: {why}"
