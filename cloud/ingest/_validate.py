"""Sans-IO validation of one MQTT message: the wire contract, then the registry.

Returns what to do with the message instead of doing it, so the rules are tested
without a broker and the worker stays a thin shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud.ingest._registry import AssetRegistry
from ironwatch.wire import (
    Command,
    FeatureRecord,
    GatewayStatus,
    StoredAck,
    TelemetryMessage,
    WaveformSnapshot,
    WireError,
    decode,
)

__all__ = ["REASON_CODES", "Accepted", "Rejected", "TimeWindow", "validate"]

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

    message: TelemetryMessage | GatewayStatus | WaveformSnapshot
    records: tuple[FeatureRecord, ...] = ()
    refused: Rejected | None = None
    out_of_window: tuple[FeatureRecord, ...] = ()


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
) -> Accepted | Rejected:
    """Decide whether a message is stored, partly stored, or dead-lettered, and why.

    With `window` and `now`, telemetry records whose ts lies outside the window are set
    apart in `out_of_window` (each is dead-lettered on its own; the rest is stored).
    """
    try:
        message = decode(topic, payload)
    except WireError as err:
        return Rejected(_code_of(err), err.reason)
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
    kept = tuple(message.records)
    if not all(allowed.values()):
        bad = sorted(a for a, ok in allowed.items() if not ok)
        refused = Rejected(
            "unknown_asset", f"assets {', '.join(bad)} are not on gateway {gateway_id!r}"
        )
        kept = tuple(r for r in message.records if allowed[r.asset_id])
        if not kept:
            return refused
    late: tuple[FeatureRecord, ...] = ()
    if window is not None and now is not None:
        late = tuple(r for r in kept if window.refuses(r.ts, now))
        if late:
            kept = tuple(r for r in kept if not window.refuses(r.ts, now))
    return Accepted(message, kept, refused, late)
