"""The wire contract between gateways and the cloud: MQTT topics and payloads, version 1.

Defined once and imported by both sides. Every message a gateway sends carries its
gateway id, a per-gateway sequence number and a UTC timestamp. Telemetry records carry
their own sequence numbers (assigned by the gateway's durable outbox, surviving restarts);
the cloud deduplicates on (gateway_id, record seq), because MQTT QoS 1 is at-least-once
and a replay after reconnect may batch records differently.

Payloads are UTF-8 JSON. See docs/wire-contract.md for an example of each message.
"""

from __future__ import annotations

import base64
import functools
import itertools
import math
import re
import zlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ironwatch.ids import Id, is_id
from ironwatch.physics import AssetPhysics
from ironwatch.units import (
    DIMENSIONLESS_FEATURES,
    DIMENSIONLESS_RANGES,
    NON_SI_SUFFIXES,
    UNIT_SUFFIXES,
    UNITS,
)

__all__ = [
    "DIMENSIONLESS_FEATURES",
    "DIMENSIONLESS_RANGES",
    "EPOCH_PATTERN",
    "MAX_RECORDS_PER_MESSAGE",
    "MAX_SEQ",
    "MAX_TS",
    "MIN_TS",
    "TOPIC_ROOT",
    "UNITS",
    "UNIT_SUFFIXES",
    "WIRE_VERSION",
    "Command",
    "FeatureRecord",
    "GatewayStatus",
    "ImplausibleValueError",
    "Message",
    "StoredAck",
    "TelemetryMessage",
    "WaveformSnapshot",
    "WireError",
    "ack_topic",
    "as_utc",
    "check_feature_name",
    "check_feature_value",
    "command_topic",
    "decode",
    "encode",
    "feature_range",
    "new_epoch",
    "parse_topic",
    "shared_subscription",
    "snapshot_topic",
    "status_topic",
    "telemetry_topic",
    "utc_now",
]

WIRE_VERSION = 1
TOPIC_ROOT = f"ironwatch/v{WIRE_VERSION}"
MAX_RECORDS_PER_MESSAGE = 5000
SHARED_GROUP = "ironwatch"

EPOCH_PATTERN = r"^[0-9a-f]{8,32}$"
_EPOCH_RE = re.compile(EPOCH_PATTERN)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
MAX_SEQ = 2**63 - 1  # the largest signed 64-bit integer: what SQLite and InfluxDB store
_FEATURE_RE = re.compile(r"^[a-z][a-z0-9_]{0,79}$")


class WireError(ValueError):
    """A message that does not follow the contract; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImplausibleValueError(ValueError):
    """A feature value that no working sensor gives: not finite, or outside its unit's range.

    Apart from ValueError so a receiver can tell one bad sample (isolate that record) from a
    sender that breaks the contract itself (a unit-less name, a wrong type of message).
    """


def as_utc(value: datetime, *, any_offset: bool = False) -> datetime:
    """The one UTC rule: `value` in UTC, or ValueError saying why not.

    A naive time is refused. On the wire the offset must be zero (`Z` or `+00:00`); with
    `any_offset` (HTTP query parameters, people typing dates) another offset is converted.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("the date-time needs an offset (Z or +00:00)")
    if not any_offset and offset != UTC.utcoffset(None):
        raise ValueError("timestamps must be UTC (end in Z or +00:00)")
    try:
        return value.astimezone(UTC)
    except OverflowError as err:
        raise ValueError("the date-time is out of range") from err


def _check_utc(value: datetime) -> datetime:
    return as_utc(value)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_check_utc)]

# Every telemetry store can keep a time in this span: InfluxDB's nanosecond int64 ends in
# April 2262, VictoriaMetrics refuses times before 1970.
MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TS = datetime(2262, 1, 1, tzinfo=UTC)


def _check_storable(value: datetime) -> datetime:
    if not MIN_TS <= value < MAX_TS:
        raise ValueError("timestamps must lie in 1970-01-01 .. 2261-12-31 (UTC)")
    return value


StoredTime = Annotated[UtcDatetime, AfterValidator(_check_storable)]
"""A UTC time every telemetry store can keep; the cloud narrows it further to a window
around its own clock (see cloud.ingest.IngestConfig)."""

Seq = Annotated[int, Strict(), Field(ge=0, le=MAX_SEQ)]
"""A sequence number: a JSON integer (not 1.0, not "1") in 0 .. 2^63-1, a signed 64-bit row key."""

StrictNumber = Annotated[float, Strict()]
"""A JSON number: integers are accepted, "1.5" and true are not (finiteness is checked apart,
with a message that says to send null)."""


def _check_epoch(value: str) -> str:
    if not _EPOCH_RE.match(value):
        raise ValueError("an outbox epoch is 8-32 lowercase hex digits")
    return value


Epoch = Annotated[str, AfterValidator(_check_epoch)]
"""The identity of one gateway outbox, made when the outbox is created (see `new_epoch`).

A reinstalled gateway (new SD card, deleted outbox) restarts its sequence numbers at 0
under a new epoch; the cloud deduplicates on (gateway, epoch, seq), so the new records are
stored, not mistaken for replays of the old ones.
"""


def new_epoch() -> str:
    """A fresh outbox epoch: 16 random hex digits."""
    import secrets

    return secrets.token_hex(8)


def utc_now() -> datetime:
    return datetime.now(UTC)


@functools.lru_cache(maxsize=4096)
def check_feature_name(name: str) -> str:
    """Return name if it follows the unit-naming rule, else raise ValueError saying why.

    Cached: every record repeats the same few dozen names, and ingestion checks each one.
    """
    if not _FEATURE_RE.match(name):
        raise ValueError(f"feature name {name!r} must be lower_snake_case")
    if name in DIMENSIONLESS_FEATURES:
        return name
    for suffix, unit in NON_SI_SUFFIXES.items():
        if name.endswith(suffix):
            raise ValueError(f"feature {name!r} is in {unit}: Ironwatch takes SI units only")
    if any(name.endswith(suffix) for suffix in UNIT_SUFFIXES):
        return name
    raise ValueError(
        f"feature {name!r} does not say its unit: end it in one of "
        f"{', '.join(sorted(UNIT_SUFFIXES))} or use a dimensionless name"
    )


@functools.lru_cache(maxsize=4096)
def feature_range(name: str) -> tuple[float | None, float | None]:
    """The physically possible (low, high) of a valid feature name; None: unbounded."""
    if name in DIMENSIONLESS_RANGES:
        return DIMENSIONLESS_RANGES[name]
    # UNITS lists "_c_per_h" before "_c" and "_h", so the longest matching suffix wins.
    for suffix, (_, low, high) in UNITS.items():
        if name.endswith(suffix):
            return low, high
    return None, None


def check_feature_value(name: str, value: float) -> float:
    """Return value if it is possible for this feature's unit, else raise ValueError."""
    low, high = feature_range(name)
    if (low is not None and value < low) or (high is not None and value > high):
        unit = next((u[0] for s, u in UNITS.items() if name.endswith(s)), "")
        raise ImplausibleValueError(
            f"feature {name!r} = {value!r}{unit and ' ' + unit} is outside its physical range "
            f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4096)


class FeatureRecord(_Strict):
    """Features of one window of one measurement point on one asset."""

    seq: Seq = Field(description="per-gateway sequence number from the outbox")
    asset_id: Id
    point: Id = Field(description="measurement point / channel, e.g. 'de_radial'")
    ts: StoredTime = Field(description="capture time of the end of the window, UTC")
    window_s: StrictNumber = Field(gt=0, le=86_400)
    features: dict[str, StrictNumber | None] = Field(min_length=1, max_length=256)
    stale: Annotated[bool, Strict()] = Field(
        default=False, description="true if a value is a last-good reading"
    )

    @field_validator("features")
    @classmethod
    def _features_named_and_possible(
        cls, value: dict[str, float | None]
    ) -> dict[str, float | None]:
        for name, v in value.items():
            check_feature_name(name)
            if v is not None:
                if not math.isfinite(v):
                    raise ImplausibleValueError(
                        f"feature {name!r} is not finite; send null for a missing value"
                    )
                check_feature_value(name, v)
        return value


class TelemetryMessage(_Strict):
    """A batch of feature records; `seq` is the first record's sequence number."""

    v: Literal[1] = 1
    type: Literal["telemetry"] = "telemetry"
    gateway_id: Id
    epoch: Epoch = Field(description="the outbox epoch the record seqs belong to")
    seq: Seq
    sent_at: StoredTime
    records: list[FeatureRecord] = Field(min_length=1, max_length=MAX_RECORDS_PER_MESSAGE)

    @model_validator(mode="after")
    def _seq_order(self) -> TelemetryMessage:
        seqs = [r.seq for r in self.records]
        if seqs[0] != self.seq:
            raise ValueError("message seq must equal its first record's seq")
        if any(b <= a for a, b in itertools.pairwise(seqs)):
            raise ValueError("record seqs must increase within a message")
        return self


class GatewayStatus(_Strict):
    """Retained gateway state: birth ('online'), last will ('offline'), periodic counters."""

    v: Literal[1] = 1
    type: Literal["status"] = "status"
    gateway_id: Id
    seq: int = Field(ge=0, description="the last sequence number the gateway assigned")
    sent_at: UtcDatetime
    state: Literal["online", "offline"]
    software_version: str = ""
    reporting_interval_s: float | None = None
    assets: list[Id] = Field(default_factory=list)
    physics: dict[Id, AssetPhysics] = Field(
        default_factory=dict,
        description="each asset's physics as the gateway is configured with it ('online')",
    )
    counters: dict[str, int] = Field(
        default_factory=dict,
        description="queued, sent, dropped, decode_errors, reconnects, ...",
    )
    clock_offset_s: float | None = Field(default=None, description="gateway clock minus reference")
    epoch: Epoch | None = Field(default=None, description="the gateway's current outbox epoch")

    @model_validator(mode="after")
    def _physics_of_own_assets(self) -> GatewayStatus:
        unknown = sorted(set(self.physics) - set(self.assets))
        if unknown:
            raise ValueError(f"physics for assets not in 'assets': {', '.join(unknown)}")
        return self


class WaveformSnapshot(_Strict):
    """A raw waveform, sent on request so the cloud can look at (and recompute) features."""

    v: Literal[1] = 1
    type: Literal["snapshot"] = "snapshot"
    gateway_id: Id
    seq: Seq
    sent_at: UtcDatetime
    request_id: str | None = None
    asset_id: Id
    point: Id
    ts: StoredTime
    sample_rate_hz: float = Field(gt=0)
    unit: Literal["m/s2"] = "m/s2"
    speed_rpm: float | None = Field(
        default=None, gt=0, description="shaft speed while the waveform was taken"
    )
    samples_f32le_b64: str = Field(
        max_length=12_000_000, description="float32 little-endian samples, base64"
    )
    snapshot_id: Id | None = Field(
        default=None,
        description="made by the gateway, unique per (gateway, asset); the same window sent"
        " again carries the same id. Older gateways leave it out: the cloud then keys the"
        " snapshot on its point and capture time (see `key`).",
    )

    @staticmethod
    def window_id(point: str, ts: datetime) -> str:
        """The id of the raw window of `point` captured at `ts`: what a gateway sends.

        Capture time in µs and a checksum of the point: a valid `Id` whatever the point's
        length, and the same for the same window however often it is sent.
        """
        us = (ts - _UNIX_EPOCH) // _MICROSECOND
        return f"{'' if us >= 0 else 'n'}{abs(us)}-{zlib.crc32(point.encode()):08x}"

    @property
    def key(self) -> str:
        """What the cloud stores this snapshot under, together with gateway and asset."""
        return self.snapshot_id or self.window_id(self.point, self.ts)

    def samples(self) -> Any:
        """The samples as a numpy float32 array (numpy imported lazily)."""
        import numpy as np

        return np.frombuffer(base64.b64decode(self.samples_f32le_b64), dtype="<f4")

    @staticmethod
    def pack(samples: Any) -> str:
        import numpy as np

        return base64.b64encode(np.asarray(samples, dtype="<f4").tobytes()).decode("ascii")


class StoredAck(_Strict):
    """Cloud to gateway: these records of this outbox epoch are stored (or dead-lettered).

    The end-to-end acknowledgement: a gateway deletes a record from its outbox only once
    the cloud has put it somewhere durable, so no broker failure can lose it. `ranges` are
    inclusive (first, last) seq ranges; a seq in a range that the gateway never sent (a gap)
    is harmless.
    """

    v: Literal[1] = 1
    type: Literal["ack"] = "ack"
    gateway_id: Id
    epoch: Epoch
    sent_at: UtcDatetime
    ranges: list[tuple[int, int]] = Field(min_length=1, max_length=MAX_RECORDS_PER_MESSAGE)

    @model_validator(mode="after")
    def _ranges_ordered(self) -> StoredAck:
        for first, last in self.ranges:
            if not 0 <= first <= last <= MAX_SEQ:
                raise ValueError(f"ack range ({first}, {last}) is not 0 <= first <= last < 2^63")
        return self

    def seqs(self) -> list[int]:
        """Every acknowledged seq, in order."""
        return [s for first, last in self.ranges for s in range(first, last + 1)]


class Command(_Strict):
    """Cloud to gateway: ask for a raw snapshot, or change the reporting interval."""

    v: Literal[1] = 1
    type: Literal["command"] = "command"
    command_id: str = Field(min_length=1, max_length=64)
    issued_at: UtcDatetime
    action: Literal["snapshot", "set_interval"]
    asset_id: Id | None = None
    point: Id | None = None
    reporting_interval_s: float | None = Field(default=None, gt=0, le=86_400)

    @model_validator(mode="after")
    def _args(self) -> Command:
        if self.action == "set_interval" and self.reporting_interval_s is None:
            raise ValueError("set_interval needs reporting_interval_s")
        if self.action == "snapshot" and self.asset_id is None:
            raise ValueError("snapshot needs asset_id")
        return self


Message = TelemetryMessage | GatewayStatus | WaveformSnapshot | Command | StoredAck
_MESSAGE: TypeAdapter[Message] = TypeAdapter(
    Annotated[Message, Field(discriminator="type")]
)

_KINDS = {"telemetry": TelemetryMessage, "status": GatewayStatus, "snapshot": WaveformSnapshot,
          "command": Command, "ack": StoredAck}


def telemetry_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/telemetry"


def status_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/status"


def snapshot_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/snapshot"


def command_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/command"


def ack_topic(gateway_id: str) -> str:
    """Where the cloud tells a gateway which of its records are stored (QoS 1)."""
    return f"{TOPIC_ROOT}/{gateway_id}/ack"


def shared_subscription(topic_filter: str, group: str = SHARED_GROUP) -> str:
    """MQTT 5 shared subscription: the broker spreads messages over the group's workers."""
    return f"$share/{group}/{topic_filter}"


TELEMETRY_FILTER = f"{TOPIC_ROOT}/+/telemetry"
STATUS_FILTER = f"{TOPIC_ROOT}/+/status"
SNAPSHOT_FILTER = f"{TOPIC_ROOT}/+/snapshot"


def parse_topic(topic: str) -> tuple[str, str]:
    """Split 'ironwatch/v1/<gateway>/<kind>' into (gateway_id, kind); WireError otherwise."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise WireError(f"topic {topic!r} is not {TOPIC_ROOT}/<gateway>/<kind>")
    gateway_id, kind = parts[2], parts[3]
    if not is_id(gateway_id):
        raise WireError(f"topic {topic!r} has an invalid gateway id")
    if kind not in _KINDS:
        raise WireError(f"topic {topic!r}: unknown kind {kind!r}")
    return gateway_id, kind


def encode(message: Message) -> bytes:
    return message.model_dump_json(exclude_none=False).encode("utf-8")


def decode(topic: str, payload: bytes) -> Message:
    """Validate a payload against the contract and its topic.

    Raises WireError with a one-line reason: bad topic, not JSON, schema violation,
    a kind that does not match the topic, or a payload gateway id that differs from
    the topic's (a gateway may speak only for itself).
    """
    gateway_id, kind = parse_topic(topic)
    try:
        message = _MESSAGE.validate_json(payload)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise WireError(f"invalid {kind} payload at {where or '<root>'}: {first['msg']}") from err
    if message.type != kind:
        raise WireError(f"payload type {message.type!r} on a {kind!r} topic")
    if kind != "command" and message.gateway_id != gateway_id:  # type: ignore[union-attr]
        raise WireError(
            f"payload gateway_id {message.gateway_id!r} differs from topic gateway "  # type: ignore[union-attr]
            f"{gateway_id!r}"
        )
    return message
