"""Wire bounds: every value a record carries is of the right JSON type and physically possible."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ironwatch import wire

EPOCH = "0123456789abcdef"


def _payload(**record: Any) -> bytes:
    rec = {"seq": 5, "asset_id": "pump-1", "point": "de", "ts": "2026-01-01T00:00:00Z",
           "window_s": 1, "features": {"velocity_rms_mms": 1.5}}
    rec.update(record)
    msg = {"v": 1, "type": "telemetry", "gateway_id": "gw-1", "epoch": EPOCH,
           "seq": rec["seq"], "sent_at": "2026-01-01T00:00:01Z", "records": [rec]}
    return json.dumps(msg).encode()


def _decode(payload: bytes) -> wire.Message:
    return wire.decode(wire.telemetry_topic("gw-1"), payload)


@pytest.mark.parametrize(
    ("record", "where"),
    [
        ({"seq": 2**63}, "seq"),
        ({"seq": -1}, "seq"),
        ({"seq": 1.0}, "seq"),
        ({"seq": "7"}, "seq"),
        ({"ts": "2263-01-01T00:00:00Z"}, "ts"),
        ({"ts": "1677-01-01T00:00:00Z"}, "ts"),
        ({"window_s": "1"}, "window_s"),
        ({"stale": "true"}, "stale"),
        ({"stale": 1}, "stale"),
        ({"features": {"velocity_rms_mms": "1.5"}}, "features"),
        ({"features": {"velocity_rms_mms": True}}, "features"),
        ({"features": {"temperature_c": -300}}, "features"),
        ({"features": {"accel_rms_ms2": -0.1}}, "features"),
        ({"features": {"velocity_rms_mms": -2}}, "features"),
        ({"features": {"load_pct": 1e6}}, "features"),
        ({"features": {"crest_factor": -1}}, "features"),
    ],
)
def test_impossible_values_are_refused_with_the_field_named(
    record: dict[str, Any], where: str
) -> None:
    with pytest.raises(wire.WireError, match=rf"at telemetry\.(records\.0\.)?{where}"):
        _decode(_payload(**record))


def test_json_integers_are_numbers_and_signed_units_keep_their_sign() -> None:
    msg = _decode(_payload(window_s=2, features={
        "velocity_rms_mms": 3, "temperature_c": -273.15, "power_kw": -4.5,
        "temperature_slope_c_per_h": -1.0, "skewness": -0.3, "load_pct": 120,
    }))
    assert isinstance(msg, wire.TelemetryMessage)
    feats = msg.records[0].features
    assert feats["velocity_rms_mms"] == 3.0 and isinstance(feats["velocity_rms_mms"], float)
    assert feats["power_kw"] == -4.5 and feats["temperature_c"] == -273.15


def test_largest_seq_is_accepted() -> None:
    msg = _decode(_payload(seq=wire.MAX_SEQ))
    assert isinstance(msg, wire.TelemetryMessage) and msg.records[0].seq == 2**63 - 1


def test_every_unit_suffix_has_a_range() -> None:
    assert set(wire.UNIT_SUFFIXES) == set(wire.UNITS)
    assert wire.feature_range("temperature_slope_c_per_h") == (None, None)
    assert wire.feature_range("temperature_c") == (-273.15, 5000.0)
    assert wire.feature_range("onset_h") == (0.0, None)
