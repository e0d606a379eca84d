"""Ids and unit suffixes are defined once, in the contract package, and used everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from firmware_bridge import modbus_profile
from ironwatch import ids, units, wire

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["ironwatch", "firmware_bridge", "edge_agent", "cloud", "models", "simulators",
           "ironwatch_app"]


class _Thing(BaseModel):
    id: ids.Id


def test_id_rule() -> None:
    for good in ("pump-7", "a", "GW_1.hall-b", "x" * 64):
        assert _Thing(id=good).id == good
    for bad in ("", "-pump", "pump 7", "pump/7", "x" * 65, "pümp"):
        with pytest.raises(ValidationError, match="ids are 1-64 letters"):
            _Thing(id=bad)
    # API clients see the rule in the schema.
    assert _Thing.model_json_schema()["properties"]["id"]["pattern"] == ids.ID_PATTERN


def test_the_id_pattern_is_written_once_in_product_code() -> None:
    holders = [
        path.relative_to(ROOT).as_posix()
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if r"[A-Za-z0-9][A-Za-z0-9_.\-]" in path.read_text(encoding="utf-8")
    ]
    assert holders == ["ironwatch/ids.py"]


def test_wire_uses_the_contract_tables() -> None:
    assert wire.UNIT_SUFFIXES is units.UNIT_SUFFIXES
    assert wire.UNITS is units.UNITS
    assert wire.DIMENSIONLESS_FEATURES is units.DIMENSIONLESS_FEATURES


def test_firmware_bridge_copy_of_the_unit_table_equals_the_contract() -> None:
    # firmware_bridge may not import the contract package, so it keeps one copy.
    assert modbus_profile.UNIT_SUFFIXES == units.UNIT_SUFFIXES
    for name in ("temperature_c", "temperature_slope_c_per_h", "speed_rpm", "energy_kwh",
                 "status_word", "accel_peak_ms2", "oil_bar", "runtime_h"):
        assert modbus_profile.unit_of(name) == units.unit_of(name), name


def test_unit_of_takes_the_longest_suffix() -> None:
    assert units.unit_of("temperature_slope_c_per_h") == "°C/h"
    assert units.unit_of("temperature_c") == "°C"
    assert units.unit_of("status_word") is None


def test_every_shipped_profile_key_is_a_contract_feature_or_says_no_unit() -> None:
    for name in modbus_profile.DeviceProfile.available():
        for spec in modbus_profile.DeviceProfile.load(name).registers:
            try:
                wire.check_feature_name(spec.key)
            except ValueError:
                # Not a feature (a status word, a counter): then it must not claim a unit
                # the contract knows under another name.
                assert units.unit_of(spec.key) is None, (name, spec.key)
            else:
                assert units.unit_of(spec.key) in (spec.unit, None), (name, spec.key)


def test_one_utc_rule_for_the_wire_and_the_api() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from cloud.api.schemas.common import _parse_utc

    plus2 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    utc = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="must be UTC"):
        wire.as_utc(plus2)  # the wire takes UTC only
    assert wire.as_utc(plus2, any_offset=True) == utc
    assert _parse_utc("2026-03-02T10:00:00+02:00") == utc  # the API converts
    for naive in (datetime(2026, 3, 2), "2026-03-02T08:00:00"):  # noqa: DTZ001
        with pytest.raises(ValueError, match="needs an offset"):
            _parse_utc(naive)
    with pytest.raises(ValueError, match="out of range"):
        _parse_utc("9999-12-31T23:59:59-05:00")
    with pytest.raises(ValueError, match="ISO 8601"):
        _parse_utc(1_700_000_000)
