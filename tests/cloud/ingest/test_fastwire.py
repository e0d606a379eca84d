"""Differential tests: the msgspec batch decoder against the pydantic wire contract.

The fast decoder may only accept what `ironwatch.wire.decode` accepts, with the same
values; it must accept what gateways send; and ingestion's verdict (records kept, records
dead-lettered and why) is the same with and without it.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.ingest import Accepted, MemoryAssetRegistry, Rejected, TimeWindow, validate
from cloud.ingest._fastwire import FastTelemetry, decode_telemetry
from ironwatch.wire import (
    FeatureRecord,
    TelemetryMessage,
    WireError,
    decode,
    encode,
    telemetry_topic,
)

GW = "gw-1"
TOPIC = telemetry_topic(GW)
NAMES = ["accel_rms_ms2", "velocity_rms_mms", "temperature_c", "speed_rpm", "crest_factor",
         "kurtosis", "skewness", "bpfo_amp_ms2", "accel_rms_g", "Bad", "x", "temp_f",
         "duty_pct", "power_w", "b" * 81]
REG = MemoryAssetRegistry({GW: {"asset-1", "asset-2", "a.b_c-3"}})

# Numbers around every bound the contract has, of every JSON type a sender might use.
_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -0.0, 1e-300, -273.15, -273.16, 86_400, 86_400.0001, 1e308,
                     2**63 - 1, 2**63, -1, 100.0, 1e6]),
)
_odd = st.one_of(st.none(), st.booleans(), st.text(max_size=4), st.just([1.0]),
                 st.just({"a": 1}))
_ids = st.one_of(
    st.sampled_from(["asset-1", "asset-2", "a.b_c-3", "asset-9", "", "-x", "a" * 64,
                     "a" * 65, "asset-1\n", "as set", "ä"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,5}", fullmatch=True),
)
_times = st.one_of(
    st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2270, 1, 1),  # noqa: DTZ001
                 timezones=st.sampled_from([UTC, None])).map(
        lambda d: d.isoformat().replace("+00:00", "Z")),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00",
                     "2026-01-01T00:00:00+01:00", "2026-01-01T00:00:00", "2026-01-01",
                     "2026-01-01 00:00:00Z", "2026-01-01T00:00:00.1234567Z",
                     "2026-01-01T00:00:00.123Z", "2026-01-01t00:00:00z", "1969-12-31T23:59:59Z",
                     "2261-12-31T23:59:59.999999Z", "2262-01-01T00:00:00Z",
                     "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "-0001-01-01T00:00:00Z"]),
    st.integers(min_value=-1, max_value=2**40),
    st.floats(allow_nan=False, min_value=0, max_value=1e10),
)


_MESSAGE_FIELDS = {
    "v": st.sampled_from([2, 1.0, "1", True, None]),
    "type": st.sampled_from(["status", "Telemetry", None]),
    "gateway_id": st.sampled_from(["gw-2", "gw 1", "", "gw-1\n"]),
    "epoch": st.sampled_from(["ABCDEF01", "1234567", "a" * 33, "0" * 8, "00000000000e0c01\n"]),
    "seq": st.one_of(_numbers, _odd),
    "sent_at": st.one_of(_times, _odd),
    "records": st.sampled_from([[], None, {}, [1]]),
}
_RECORD_FIELDS = {
    "seq": st.one_of(_numbers, _odd),
    "asset_id": st.one_of(_ids, _odd),
    "point": st.one_of(_ids, _odd),
    "ts": st.one_of(_times, _odd),
    "window_s": st.one_of(_numbers, _odd),
    "stale": st.one_of(st.booleans(), st.sampled_from([0, 1, "true", None])),
    "features": st.sampled_from([{}, None, [], {"accel_rms_ms2": 1.0, "": 1.0}]),
}


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    """A telemetry message as a gateway sends it, with zero to three faults put in."""
    n = draw(st.integers(1, 5))
    first = draw(st.integers(0, 2**62))
    good_value = st.one_of(st.floats(min_value=0, max_value=500), st.integers(0, 500),
                           st.none())
    records: list[dict[str, Any]] = []
    for i in range(n):
        names = draw(st.lists(st.sampled_from(NAMES[:8]), min_size=1, max_size=6, unique=True))
        records.append({
            "seq": first + i * draw(st.integers(1, 3)) if i else first,
            "asset_id": draw(st.sampled_from(["asset-1", "asset-2", "a.b_c-3"])),
            "point": "de_radial",
            "ts": draw(st.sampled_from(["2026-01-01T00:00:00Z", "2025-12-31T23:59:59.5Z",
                                        "2026-01-01T00:00:00.000001+00:00"])),
            "window_s": draw(st.sampled_from([1.0, 1, 0.5, 86_400])),
            "features": {k: draw(good_value) for k in names},
        })
        if draw(st.booleans()):
            records[-1]["stale"] = draw(st.booleans())
    for i in range(1, n):  # keep seqs increasing
        records[i]["seq"] = max(records[i]["seq"], records[i - 1]["seq"] + 1)
    body: dict[str, Any] = {"v": 1, "type": "telemetry", "gateway_id": GW,
                            "epoch": "00000000000e0c01", "seq": first,
                            "sent_at": "2026-01-01T00:00:01Z", "records": records}
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))):
        where = draw(st.sampled_from(["message", "record", "feature", "missing", "extra"]))
        if where == "message":
            key = draw(st.sampled_from(sorted(_MESSAGE_FIELDS)))
            body[key] = draw(_MESSAGE_FIELDS[key])
        elif where == "record":
            key = draw(st.sampled_from(sorted(_RECORD_FIELDS)))
            records[draw(st.integers(0, n - 1))][key] = draw(_RECORD_FIELDS[key])
        elif where == "feature":
            feats = records[draw(st.integers(0, n - 1))].get("features")
            if isinstance(feats, dict):
                feats[draw(st.sampled_from(NAMES))] = draw(st.one_of(_numbers, _odd))
        elif where == "missing":
            target = draw(st.sampled_from([body, *records]))
            target.pop(draw(st.sampled_from(sorted(target))), None)
        else:
            draw(st.sampled_from([body, *records]))["unexpected"] = 1
    return json.dumps(body).encode()  # NaN and Infinity as JSON extensions, as senders may


def _same_record(fast: Any, slow: FeatureRecord) -> bool:
    def same_number(a: float | None, b: float | None) -> bool:
        return (a is None and b is None) or (
            a is not None and b is not None and (a == b or (math.isnan(a) and math.isnan(b))))

    return (fast.seq == slow.seq and fast.asset_id == slow.asset_id and fast.point == slow.point
            and fast.ts == slow.ts and fast.stale is slow.stale
            and fast.window_s == slow.window_s and list(fast.features) == list(slow.features)
            and all(same_number(fast.features[k], slow.features[k]) for k in slow.features))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_messages())
def test_fast_decoder_never_accepts_what_the_contract_refuses(payload: bytes) -> None:
    fast = decode_telemetry(GW, payload)
    try:
        slow = decode(TOPIC, payload)
    except WireError as err:
        assert fast is None, f"fast decoder accepted a message the contract refuses: {err}"
        return
    if fast is None:
        return  # the contract decides: the caller falls back to it
    assert isinstance(slow, TelemetryMessage)
    assert (fast.gateway_id, fast.epoch, fast.seq, fast.sent_at) == (
        slow.gateway_id, slow.epoch, slow.seq, slow.sent_at)
    assert len(fast.records) == len(slow.records)
    assert all(_same_record(f, s) for f, s in zip(fast.records, slow.records, strict=True))


_valid_records = st.lists(
    st.builds(
        lambda asset, ts_s, window, stale, feats: (asset, ts_s, window, stale, feats),
        st.sampled_from(["asset-1", "asset-2", "a.b_c-3"]),
        st.integers(0, 10**9),
        st.floats(min_value=1e-6, max_value=86_400),
        st.booleans(),
        st.dictionaries(
            st.sampled_from(["accel_rms_ms2", "velocity_rms_mms", "temperature_c",
                             "speed_rpm", "crest_factor", "kurtosis", "skewness"]),
            st.one_of(st.none(), st.floats(min_value=0, max_value=200)),
            min_size=1),
    ),
    min_size=1, max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(_valid_records, st.integers(0, 2**62))
def test_fast_decoder_accepts_what_gateways_send(rows: list[Any], first_seq: int) -> None:
    t0 = datetime(1990, 1, 1, tzinfo=UTC)
    records = [
        FeatureRecord(seq=first_seq + i, asset_id=asset, point="de_radial",
                      ts=t0 + timedelta(seconds=ts_s, microseconds=i), window_s=window,
                      stale=stale, features=feats)
        for i, (asset, ts_s, window, stale, feats) in enumerate(rows)
    ]
    message = TelemetryMessage(gateway_id=GW, epoch="00000000000e0c01", seq=first_seq,
                               sent_at=datetime.now(UTC), records=records)
    fast = decode_telemetry(GW, encode(message))
    assert isinstance(fast, FastTelemetry)
    assert all(_same_record(f, s) for f, s in zip(fast.records, records, strict=True))


def _verdict(v: Accepted | Rejected) -> Any:
    """What ingestion does with a message: records kept, set apart and dead-lettered, and why."""
    if isinstance(v, Rejected):
        return ("rejected", v.reason_code, v.reason)
    return ("accepted",
            [(r.seq, r.asset_id, r.ts, dict(r.features)) for r in v.records],
            None if v.refused is None else (v.refused.reason_code, v.refused.reason),
            [r.seq for r in v.out_of_window],
            [(b.seq, b.reason) for b in v.invalid])


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_messages())
def test_ingestion_verdict_is_the_same_with_the_fast_decoder(payload: bytes) -> None:
    window = TimeWindow(timedelta(days=3650), timedelta(days=1))
    now = datetime(2026, 1, 2, tzinfo=UTC)
    fast = validate(TOPIC, payload, REG, window=window, now=now)
    slow = validate(TOPIC, payload, REG, window=window, now=now, fast=False)
    assert _verdict(fast) == _verdict(slow)
