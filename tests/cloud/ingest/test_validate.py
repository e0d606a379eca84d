"""Pure tests of message validation: contract, registry, and the reason codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.ingest import (
    REASON_CODES,
    Accepted,
    IngestConfig,
    IngestConfigError,
    MemoryAssetRegistry,
    MemoryDeadLetterStore,
    Rejected,
    validate,
)
from cloud.ingest._deadletter import DeadLetter
from ironwatch.mqtt import BrokerSettings
from ironwatch.wire import encode, telemetry_topic
from ironwatch_testing.ingest import make_records, make_telemetry

REG = MemoryAssetRegistry({"gw-1": {"asset-1", "asset-2"}})


def _payload(gw: str = "gw-1", assets: tuple[str, ...] = ("asset-1",)) -> bytes:
    return encode(make_telemetry(gw, make_records(0, 4, assets=assets)))


def test_valid_telemetry_is_accepted_with_all_records() -> None:
    verdict = validate(telemetry_topic("gw-1"), _payload(), REG)
    assert isinstance(verdict, Accepted)
    assert len(verdict.records) == 4 and verdict.refused is None


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        ("ironwatch/v1/gw-1/bogus", b"{}", "bad_topic"),
        ("other/gw-1/telemetry", b"{}", "bad_topic"),
        (telemetry_topic("gw-1"), b"not json", "invalid_payload"),
        (telemetry_topic("gw-1"), b'{"v": 1, "type": "telemetry"}', "invalid_payload"),
        (telemetry_topic("gw-2"), _payload("gw-1"), "gateway_mismatch"),
        (telemetry_topic("gw-9"), _payload("gw-9"), "unknown_gateway"),
        (telemetry_topic("gw-1"), _payload(assets=("asset-9",)), "unknown_asset"),
    ],
)
def test_rejections_carry_a_reason_code(topic: str, payload: bytes, code: str) -> None:
    verdict = validate(topic, payload, REG)
    assert isinstance(verdict, Rejected)
    assert verdict.reason_code == code and verdict.reason_code in REASON_CODES
    assert verdict.reason


def test_non_si_feature_is_rejected_as_invalid_payload() -> None:
    body = json.loads(_payload())
    body["records"][0]["features"] = {"accel_rms_g": 1.0}
    verdict = validate(telemetry_topic("gw-1"), json.dumps(body).encode(), REG)
    assert isinstance(verdict, Rejected) and verdict.reason_code == "invalid_payload"
    assert "SI" in verdict.reason


def test_unknown_asset_records_are_refused_and_the_rest_kept() -> None:
    verdict = validate(telemetry_topic("gw-1"), _payload(assets=("asset-1", "asset-9")), REG)
    assert isinstance(verdict, Accepted)
    assert {r.asset_id for r in verdict.records} == {"asset-1"}
    assert verdict.refused is not None and verdict.refused.reason_code == "unknown_asset"


def test_config_refuses_qos0_and_half_credentials() -> None:
    with pytest.raises(IngestConfigError):
        IngestConfig(qos=0)  # type: ignore[arg-type]
    with pytest.raises(IngestConfigError):
        IngestConfig(broker=BrokerSettings(username="cloud"))
    cfg = IngestConfig(shared_group="ironwatch")
    assert all(s.startswith("$share/ironwatch/ironwatch/v1/") for s in cfg.subscriptions)


def test_dead_letter_payload_is_bounded() -> None:
    store = MemoryDeadLetterStore(max_items=2)
    for i in range(3):
        store.put(DeadLetter.make("t", b"x" * 1000, "invalid_payload", f"r{i}",
                                  max_payload_bytes=10))
    recent = store.recent()
    assert [d.reason for d in recent] == ["r2", "r1"]
    assert recent[0].payload == b"x" * 10 and recent[0].payload_size == 1000
    assert store.count() == 3 and store.count("invalid_payload") == 3


def test_sqlite_dead_letters_keep_gateway_epoch_and_seq(tmp_path: Path) -> None:
    import sqlite3

    from cloud.ingest import SqliteDeadLetterStore

    path = tmp_path / "dead.db"
    old = sqlite3.connect(path)  # a file from before the gateway/epoch/seq columns
    old.execute("CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, "
                "topic TEXT NOT NULL, reason_code TEXT NOT NULL, reason TEXT NOT NULL, "
                "payload BLOB NOT NULL, payload_size INTEGER NOT NULL)")
    old.commit()
    old.close()
    store = SqliteDeadLetterStore(path)
    store.put_many([DeadLetter.make("t", b"{}", "conflict", "r", max_payload_bytes=10,
                                    gateway_id="gw-1", epoch="0123abcd", seq=7)])
    [letter] = store.recent()
    store.close()
    assert (letter.gateway_id, letter.epoch, letter.seq) == ("gw-1", "0123abcd", 7)


def test_time_window_is_relative_to_the_cloud_clock() -> None:
    from datetime import UTC, datetime, timedelta

    from cloud.ingest import TimeWindow

    now = datetime(2026, 6, 1, tzinfo=UTC)
    window = TimeWindow(past=timedelta(days=3650), future=timedelta(days=1))
    records = make_records(0, 3, t0=now - timedelta(days=4000))
    payload = encode(make_telemetry("gw-1", records))
    verdict = validate(telemetry_topic("gw-1"), payload, REG, window=window, now=now)
    assert isinstance(verdict, Accepted)
    assert verdict.records == () and len(verdict.out_of_window) == 3
    fresh = encode(make_telemetry("gw-1", make_records(0, 3, t0=now - timedelta(hours=1))))
    verdict = validate(telemetry_topic("gw-1"), fresh, REG, window=window, now=now)
    assert isinstance(verdict, Accepted) and len(verdict.records) == 3
    assert not window.refuses(now + timedelta(hours=23), now)
    assert window.refuses(now + timedelta(hours=25), now)


def test_an_impossible_sample_refuses_only_its_record() -> None:
    body = json.loads(_payload(assets=("asset-1",)))
    body["records"][1]["features"] = {"temperature_c": -300.0}
    body["records"][2]["features"]["velocity_rms_mms"] = "1.5"
    verdict = validate(telemetry_topic("gw-1"), json.dumps(body).encode(), REG)
    assert isinstance(verdict, Accepted)
    assert [r.seq for r in verdict.records] == [0, 3]
    assert [(b.seq, "temperature_c" in b.reason) for b in verdict.invalid] == [(1, True),
                                                                             (2, False)]
    assert "velocity_rms_mms" in verdict.invalid[1].reason


def test_a_record_breaking_the_contract_still_refuses_the_message() -> None:
    body = json.loads(_payload(assets=("asset-1",)))
    body["records"][1]["features"] = {"temperature_c": -300.0}
    body["records"][2]["colour"] = "blue"  # an unknown field: the sender's software is wrong
    verdict = validate(telemetry_topic("gw-1"), json.dumps(body).encode(), REG)
    assert isinstance(verdict, Rejected) and verdict.reason_code == "invalid_payload"
