"""The wire contract: what is accepted, what is refused and why."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ironwatch import wire

TS = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
EPOCH = "00000000000e0c01"


def record(seq: int, **features: float | None) -> wire.FeatureRecord:
    return wire.FeatureRecord(
        seq=seq,
        asset_id="pump-7",
        point="de",
        ts=TS,
        window_s=1.0,
        features=features or {"accel_rms_ms2": 1.0},
    )


def telemetry(gateway: str = "gw-1", seqs: tuple[int, ...] = (5, 6)) -> wire.TelemetryMessage:
    return wire.TelemetryMessage(
        gateway_id=gateway, epoch=EPOCH, seq=seqs[0], sent_at=TS, records=[record(s) for s in seqs]
    )


def test_round_trip_telemetry() -> None:
    msg = telemetry()
    decoded = wire.decode(wire.telemetry_topic("gw-1"), wire.encode(msg))
    assert decoded == msg


def test_topics() -> None:
    assert wire.telemetry_topic("gw-1") == "ironwatch/v1/gw-1/telemetry"
    assert wire.parse_topic("ironwatch/v1/gw-1/status") == ("gw-1", "status")
    assert (
        wire.shared_subscription(wire.TELEMETRY_FILTER)
        == "$share/ironwatch/ironwatch/v1/+/telemetry"
    )
    for bad in [
        "ironwatch/v2/gw-1/telemetry",
        "ironwatch/v1/gw-1",
        "ironwatch/v1/gw 1/telemetry",
        "ironwatch/v1/gw-1/other",
        "x/y/z/w",
    ]:
        with pytest.raises(wire.WireError):
            wire.parse_topic(bad)


@pytest.mark.parametrize(
    ("topic", "mutate", "reason"),
    [
        ("ironwatch/v1/gw-2/telemetry", lambda d: d, "differs from topic gateway"),
        ("ironwatch/v1/gw-1/status", lambda d: d, "on a 'status' topic"),
        ("ironwatch/v1/gw-1/telemetry", lambda d: {**d, "extra": 1}, "Extra inputs"),
        ("ironwatch/v1/gw-1/telemetry", lambda d: {**d, "v": 2}, "v"),
        ("ironwatch/v1/gw-1/telemetry", lambda d: {**d, "seq": 4}, "first record"),
        (
            "ironwatch/v1/gw-1/telemetry",
            lambda d: {**d, "sent_at": "2026-11-23T10:30:00+01:00"},
            "UTC",
        ),
        (
            "ironwatch/v1/gw-1/telemetry",
            lambda d: {**d, "sent_at": "2026-11-23T10:30:00"},
            "timezone",
        ),
        ("ironwatch/v1/gw-1/telemetry", lambda d: {**d, "records": []}, "at least 1"),
        (
            "ironwatch/v1/gw-1/telemetry",
            lambda d: {**d, "records": [d["records"][1], d["records"][0]], "seq": 6},
            "increase",
        ),
    ],
)
def test_refusals_say_why(topic: str, mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    payload = json.dumps(mutate(json.loads(wire.encode(telemetry())))).encode()
    with pytest.raises(wire.WireError) as err:
        wire.decode(topic, payload)
    assert reason in err.value.reason


def test_not_json() -> None:
    with pytest.raises(wire.WireError, match="Invalid JSON"):
        wire.decode("ironwatch/v1/gw-1/telemetry", b"\xff\x00garbage")


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("accel_rms_g", "m/s²"),
        ("temperature_f", "°C"),
        ("velocity_ips", "mm/s"),
        ("vibration", "unit"),
        ("Accel_RMS_ms2", "lower_snake_case"),
    ],
)
def test_feature_units_are_si_and_named(name: str, hint: str) -> None:
    with pytest.raises(ValueError, match=hint):
        wire.check_feature_name(name)


def test_known_feature_names_pass() -> None:
    for name in [
        "accel_rms_ms2",
        "velocity_rms_mms",
        "temperature_c",
        "temperature_slope_c_per_h",
        "speed_rpm",
        "kurtosis",
        "crest_factor",
        "env_bpfo_ms2",
        "current_a",
        "power_kw",
    ]:
        assert wire.check_feature_name(name) == name


def test_non_finite_values_refused_null_accepted() -> None:
    with pytest.raises(ValueError, match="not finite"):
        record(1, accel_rms_ms2=float("nan"))
    assert record(1, accel_rms_ms2=None).features == {"accel_rms_ms2": None}


def test_non_utc_datetime_normalised_only_if_utc() -> None:
    with pytest.raises(ValueError, match="UTC"):
        wire.FeatureRecord(
            seq=0,
            asset_id="a",
            point="p",
            ts=TS.astimezone(timezone(timedelta(hours=2))),
            window_s=1.0,
            features={"accel_rms_ms2": 1.0},
        )


def test_command_arguments_checked() -> None:
    with pytest.raises(ValueError, match="reporting_interval_s"):
        wire.Command(command_id="c", issued_at=TS, action="set_interval")
    with pytest.raises(ValueError, match="asset_id"):
        wire.Command(command_id="c", issued_at=TS, action="snapshot")
    cmd = wire.Command(command_id="c", issued_at=TS, action="set_interval", reporting_interval_s=5)
    assert wire.decode(wire.command_topic("gw-1"), wire.encode(cmd)) == cmd


def test_snapshot_samples_round_trip() -> None:
    samples = np.sin(np.linspace(0, 20, 4096)).astype(np.float32)
    snap = wire.WaveformSnapshot(
        gateway_id="gw-1",
        seq=9,
        sent_at=TS,
        asset_id="pump-7",
        point="de",
        ts=TS,
        sample_rate_hz=25600.0,
        samples_f32le_b64=wire.WaveformSnapshot.pack(samples),
    )
    back = wire.decode(wire.snapshot_topic("gw-1"), wire.encode(snap))
    assert isinstance(back, wire.WaveformSnapshot)
    np.testing.assert_array_equal(back.samples(), samples)


ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(
    gateway=ids,
    asset=ids,
    start=st.integers(min_value=0, max_value=2**53),
    values=st.lists(st.one_of(st.none(), finite), min_size=1, max_size=20),
)
def test_round_trip_property(
    gateway: str, asset: str, start: int, values: list[float | None]
) -> None:
    recs = [
        wire.FeatureRecord(
            seq=start + i,
            asset_id=asset,
            point="p1",
            ts=TS,
            window_s=0.5,
            features={"skewness": v},  # a feature of either sign: any finite value is possible
        )
        for i, v in enumerate(values)
    ]
    msg = wire.TelemetryMessage(
        gateway_id=gateway, epoch=EPOCH, seq=start, sent_at=TS, records=recs)
    assert wire.decode(wire.telemetry_topic(gateway), wire.encode(msg)) == msg


@given(st.binary(max_size=512))
def test_decode_never_raises_anything_but_wire_error(payload: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        wire.decode("ironwatch/v1/gw-1/telemetry", payload)


def test_birth_message_carries_each_assets_physics() -> None:
    from ironwatch.physics import AssetPhysics

    physics = AssetPhysics(
        speed_rpm=1480.0, iso_group=2, foundation="rigid",
        points=[{"id": "de_radial", "bearing": {"n_balls": 9, "ball_diameter_mm": 7.94,
                                                "pitch_diameter_mm": 39.04,
                                                "designation": "SKF 6205"}}],
    )
    birth = wire.GatewayStatus(
        gateway_id="gw-1", seq=0, sent_at=TS, state="online", assets=["pump-7", "fan-2"],
        physics={"pump-7": physics},
    )
    back = wire.decode(wire.status_topic("gw-1"), wire.encode(birth))
    assert isinstance(back, wire.GatewayStatus)
    assert back == birth and back.physics["pump-7"] == physics
    assert back.physics["pump-7"].bearing_at("de_radial") == physics.points[0].bearing


def test_physics_of_a_foreign_asset_or_a_bad_bearing_is_refused() -> None:
    body = {"v": 1, "type": "status", "gateway_id": "gw-1", "seq": 0,
            "sent_at": "2026-11-23T09:30:00Z", "state": "online", "assets": ["pump-7"],
            "physics": {"other": {"speed_rpm": 1480}}}
    with pytest.raises(wire.WireError, match="physics for assets not in 'assets': other"):
        wire.decode(wire.status_topic("gw-1"), json.dumps(body).encode())
    body["physics"] = {"pump-7": {"speed_rpm": 1480, "points": [
        {"id": "de", "bearing": {"n_balls": 9, "ball_diameter_mm": 40,
                                 "pitch_diameter_mm": 39.04}}]}}
    with pytest.raises(wire.WireError, match=r"physics\.pump-7\.points\.0\.bearing"):
        wire.decode(wire.status_topic("gw-1"), json.dumps(body).encode())


def test_snapshot_says_its_speed_in_rpm() -> None:
    snap = wire.WaveformSnapshot(
        gateway_id="gw-1", seq=1, sent_at=TS, asset_id="pump-7", point="de", ts=TS,
        sample_rate_hz=1000.0, speed_rpm=1480.0,
        samples_f32le_b64=wire.WaveformSnapshot.pack(np.zeros(4)),
    )
    body = json.loads(wire.encode(snap))
    assert body["speed_rpm"] == 1480.0 and "shaft_hz" not in body
    body["shaft_hz"] = 24.7
    with pytest.raises(wire.WireError, match="shaft_hz"):
        wire.decode(wire.snapshot_topic("gw-1"), json.dumps(body).encode())
