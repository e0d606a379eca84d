"""Sans-IO validation of one MQTT message: the wire contract, then the registry.

Returns what to do with the message instead of doing it, so the rules are tested
without a broker and the worker stays a thin shell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from pydantic import ValidationError

from cloud.ingest._fastwire import FastTelemetry, decode_telemetry
from cloud.ingest._registry import AssetRegistry
from cloud.telemetry import StorableRecord
from ironwatch.wire import (
    MAX_SEQ,
    Command,
    FeatureRecord,
    GatewayStatus,
    ImplausibleValueError,
    StoredAck,
    TelemetryMessage,
    WaveformSnapshot,
    WireError,
    decode,
    parse_topic,
)

__all__ = ["REASON_CODES", "Accepted", "InvalidRecord", "Rejected", "TimeWindow", "validate"]

_TS = attrgetter("ts")

# Stable codes for counting and alerting; the free-text reason carries the detail.
REASON_CODES = (
    "bad_topic",
    "invalid_payload",
    "kind_mismatch",
    "gateway_mismatch",
    "unknown_gateway",
    "unknown_asset",
    "unexpected_command",
    # per record, after the message is valid:
    "invalid_record",
    "ts_out_of_window",
    "too_many_features",
    "conflict",
    "store_rejected",
    # before parsing:
    "too_large",
)


@dataclass(frozen=True)
class Rejected:
    """The whole message goes to the dead-letter store."""

    reason_code: str
    reason: str


@dataclass(frozen=True)
class Accepted:
    """A valid message; for telemetry, `records` are the ones whose asset is allowed.

    `refused` is set when some records named assets this gateway may not report: those
    records are dead-lettered (with the whole payload) and the rest is stored.
    """

    message: TelemetryMessage | FastTelemetry | GatewayStatus | WaveformSnapshot
    records: tuple[StorableRecord, ...] = ()
    refused: Rejected | None = None
    out_of_window: tuple[StorableRecord, ...] = ()
    invalid: tuple[InvalidRecord, ...] = ()


@dataclass(frozen=True)
class InvalidRecord:
    """One record of a telemetry message with an impossible value (the rest is valid).

    `raw` is the record as sent; `seq` is its seq if that one is valid.
    """

    raw: Any
    seq: int | None
    reason: str


@dataclass(frozen=True)
class TimeWindow:
    """The record times the cloud accepts, relative to its own clock."""

    past: timedelta
    future: timedelta

    def refuses(self, ts: datetime, now: datetime) -> bool:
        return not now - self.past <= ts <= now + self.future

    def reason(self, ts: datetime, now: datetime) -> str:
        return (f"ts {ts.isoformat()} is outside {(now - self.past).isoformat()} .. "
                f"{(now + self.future).isoformat()} (the cloud's clock window)")


def _code_of(err: WireError) -> str:
    reason = err.reason
    if reason.startswith("topic "):
        return "bad_topic"
    if "differs from topic gateway" in reason:
        return "gateway_mismatch"
    if reason.startswith("payload type"):
        return "kind_mismatch"
    return "invalid_payload"


def validate(
    topic: str,
    payload: bytes,
    registry: AssetRegistry,
    *,
    window: TimeWindow | None = None,
    now: datetime | None = None,
    fast: bool = True,
) -> Accepted | Rejected:
    """Decide whether a message is stored, partly stored, or dead-lettered, and why.

    With `window` and `now`, telemetry records whose ts lies outside the window are set
    apart in `out_of_window` (each is dead-lettered on its own; the rest is stored).
    With `fast`, telemetry is first decoded by the msgspec batch decoder (`_fastwire`);
    whatever it does not accept goes through the pydantic contract, which says why.
    """
    invalid: tuple[InvalidRecord, ...] = ()
    message: TelemetryMessage | FastTelemetry | GatewayStatus | WaveformSnapshot | Command | \
        StoredAck | None = None
    if fast and topic.endswith("/telemetry"):
        try:
            gateway, kind = parse_topic(topic)
        except WireError:
            pass
        else:
            if kind == "telemetry":
                message = decode_telemetry(gateway, payload)
    if message is None:
        try:
            message = decode(topic, payload)
        except WireError as err:
            salvaged = _isolate_bad_records(topic, payload)
            if salvaged is None:
                return Rejected(_code_of(err), err.reason)
            message, invalid = salvaged
    if isinstance(message, Command | StoredAck):
        return Rejected(
            "unexpected_command", f"a cloud-to-gateway {message.type} arrived on {topic!r}"
        )
    gateway_id = message.gateway_id
    if not registry.gateway_known(gateway_id):
        return Rejected("unknown_gateway", f"gateway {gateway_id!r} is not registered")
    if isinstance(message, WaveformSnapshot):
        if not registry.asset_allowed(gateway_id, message.asset_id):
            return Rejected(
                "unknown_asset", f"asset {message.asset_id!r} is not on gateway {gateway_id!r}"
            )
        return Accepted(message)
    if isinstance(message, GatewayStatus):
        return Accepted(message)
    allowed: dict[str, bool] = {}
    for asset in {r.asset_id for r in message.records}:
        allowed[asset] = registry.asset_allowed(gateway_id, asset)
    refused: Rejected | None = None
    kept: tuple[StorableRecord, ...] = tuple(message.records)
    if not all(allowed.values()):
        bad = sorted(a for a, ok in allowed.items() if not ok)
        refused = Rejected(
            "unknown_asset", f"assets {', '.join(bad)} are not on gateway {gateway_id!r}"
        )
        kept = tuple(r for r in message.records if allowed[r.asset_id])
        if not kept:
            return refused
    late: tuple[StorableRecord, ...] = ()
    if window is not None and now is not None:
        low, high = now - window.past, now + window.future
        times = list(map(_TS, kept))
        if low <= min(times) and max(times) <= high:  # usually: nothing to set apart
            late = ()
        else:
            late = tuple(r for r in kept if not low <= r.ts <= high)
        if late:
            kept = tuple(r for r in kept if low <= r.ts <= high)
    return Accepted(message, kept, refused, late, invalid)


# Where a record's error may be one bad sample rather than a sender breaking the contract.
_SAMPLE_FIELDS = frozenset({"seq", "ts", "window_s", "stale"})


def _is_bad_sample(error: Any) -> bool:
    loc = error.get("loc", ())
    if not loc:
        return False
    if loc[0] in _SAMPLE_FIELDS:
        return True
    if loc[0] == "features":
        if len(loc) >= 2:
            return True  # a value of the wrong JSON type, e.g. "1.5" or true
        return isinstance(error.get("ctx", {}).get("error"), ImplausibleValueError)
    return False


def _isolate_bad_records(
    topic: str, payload: bytes
) -> tuple[TelemetryMessage, tuple[InvalidRecord, ...]] | None:
    """A telemetry message whose only faults are bad samples in some records: the valid
    records as a message, and the bad ones. None if anything else is wrong with it.

    A unit-less feature name or an unknown field is the sender's software breaking the
    contract, and refuses the whole message; an impossible value (-300 degC, "1.5", a ts
    in 2263) is one sample, and refuses only its record.
    """
    try:
        gateway_id, kind = parse_topic(topic)
        body = json.loads(payload)
    except ValueError:
        return None
    if kind != "telemetry" or not isinstance(body, dict):
        return None
    raw_records = body.get("records")
    if not isinstance(raw_records, list):
        return None
    good: list[FeatureRecord] = []
    bad: list[InvalidRecord] = []
    for raw in raw_records:
        try:
            good.append(FeatureRecord.model_validate(raw))
        except ValidationError as err:
            errors = err.errors()
            if not isinstance(raw, dict) or not all(_is_bad_sample(e) for e in errors):
                return None
            seq = raw.get("seq")
            where = ".".join(str(p) for p in errors[0].get("loc", ()))
            bad.append(InvalidRecord(
                raw, seq if type(seq) is int and 0 <= seq <= MAX_SEQ else None,
                f"invalid record at {where}: {errors[0]['msg']}",
            ))
    if not good or not bad:
        return None
    try:
        message = TelemetryMessage.model_validate({**body, "records": good, "seq": good[0].seq})
    except ValidationError:
        return None
    if message.gateway_id != gateway_id:
        return None
    return message, tuple(bad)
