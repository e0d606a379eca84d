"""A fast decoder for telemetry: msgspec Structs and batch checks, the wire contract's rules.

`ironwatch.wire` (pydantic) is the contract's one definition; validating every record of
every message with it costs more than storing the record. This module decodes a whole
telemetry message with msgspec in one call and checks what msgspec's constraints cannot
say (feature names and their units, physical ranges, UTC offsets, the span a store can
keep, seq order) once per batch: names once per distinct name set, values as one numpy
comparison per name set.

It only ever *accepts*. Anything it is not sure of (a refused value, an unusual but
maybe legal encoding) makes it return None, and the caller asks the pydantic contract,
which says why and isolates the bad records. So the outcome is the contract's by
construction; the differential tests (tests/cloud/ingest/test_fastwire.py) show the fast
path never accepts what the contract refuses, decodes the same values, and accepts what
gateways send.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
import numpy as np

from ironwatch.ids import ID_PATTERN, is_id
from ironwatch.wire import (
    EPOCH_PATTERN,
    MAX_RECORDS_PER_MESSAGE,
    MAX_SEQ,
    MAX_TS,
    MIN_TS,
    check_feature_name,
    feature_range,
)

__all__ = ["FastRecord", "FastTelemetry", "decode_telemetry"]

_Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
_Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
_ZERO = timedelta(0)
# Times are taken in the UTC spelling gateways send (pydantic's JSON encoding, see
# _utc_time). Other spellings the contract also takes ("+0000", a space for T, 7+ digits
# of fraction, which it truncates where msgspec and fromisoformat would round) go to it.


class FastRecord(msgspec.Struct, frozen=True):
    """A feature record decoded by the fast path: `ironwatch.wire.FeatureRecord`'s fields."""

    seq: int
    asset_id: str
    point: str
    ts: datetime
    window_s: float
    features: dict[str, float | None]
    stale: bool = False


class _WireRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seq: _Seq
    asset_id: str  # ids are checked once per distinct value (see _ids_valid)
    point: str
    ts: str
    window_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)]
    features: Annotated[dict[str, float | None], msgspec.Meta(min_length=1, max_length=256)]
    stale: bool = False


class _WireTelemetry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: Literal["telemetry"]  # required: the contract picks the message kind by it
    gateway_id: _Id
    epoch: Annotated[str, msgspec.Meta(pattern=EPOCH_PATTERN)]
    seq: _Seq
    sent_at: str
    records: Annotated[
        list[_WireRecord], msgspec.Meta(min_length=1, max_length=MAX_RECORDS_PER_MESSAGE)
    ]
    v: Literal[1] = 1


class FastTelemetry(msgspec.Struct, frozen=True):
    """A telemetry message decoded by the fast path: the attributes of `TelemetryMessage`."""

    gateway_id: str
    epoch: str
    seq: int
    sent_at: datetime
    records: list[FastRecord]


_DECODER = msgspec.json.Decoder(_WireTelemetry)


@functools.lru_cache(maxsize=65_536)
def _id_valid(value: str) -> bool:
    return is_id(value)


def _ids_valid(records: list[_WireRecord]) -> bool:
    """Asset and point ids follow the id rule: a fleet repeats a few thousand of them, so
    each distinct one is checked once (cached) instead of a regex per record."""
    ids = {r.asset_id for r in records}
    ids.update(r.point for r in records)
    return all(_id_valid(i) for i in ids)


@functools.lru_cache(maxsize=4096)
def _bounds(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) arrays of a name set in its order; None if a name breaks the unit rule."""
    lows, highs = [], []
    for name in names:
        try:
            check_feature_name(name)
        except ValueError:
            return None
        low, high = feature_range(name)
        lows.append(-np.inf if low is None else low)
        highs.append(np.inf if high is None else high)
    return np.asarray(lows, dtype=np.float64), np.asarray(highs, dtype=np.float64)


def _utc_time(text: str) -> datetime | None:
    """A canonical UTC time a store can keep, or None (ask the contract).

    `YYYY-MM-DDTHH:MM:SS[.f{1,6}]` then `Z` or `+00:00`: the separators are checked here,
    the digits by `datetime.fromisoformat` (ASCII digits only); no regex per record.
    """
    if text.endswith("Z"):
        body = text[:-1]
    elif text.endswith("+00:00"):
        body = text[:-6]
    else:
        return None
    n = len(body)
    if not (n == 19 or (21 <= n <= 26 and body[19] == ".")):
        return None
    if (body[4] != "-" or body[7] != "-" or body[10] != "T" or body[13] != ":"
            or body[16] != ":"):
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:  # a non-digit, month 13, hour 24
        return None
    return ts if MIN_TS <= ts < MAX_TS else None


def _values_possible(records: list[_WireRecord]) -> bool:
    """Every name follows the unit rule and every value is finite and physically possible."""
    by_names: dict[tuple[str, ...], list[float | None]] = {}
    for r in records:
        feats: Mapping[str, float | None] = r.features
        names = tuple(feats)
        values = by_names.get(names)
        if values is None:
            values = by_names[names] = []
        values.extend(feats.values())
    for names, flat in by_names.items():
        bounds = _bounds(names)
        if bounds is None:
            return False
        low, high = bounds
        try:
            column = np.fromiter(flat, dtype=np.float64, count=len(flat))
        except TypeError:  # a null: NaN, which every check below passes
            column = np.array(flat, dtype=np.float64)
        table = column.reshape(-1, len(names))
        with np.errstate(invalid="ignore"):
            if np.isinf(table).any() or (table < low).any() or (table > high).any():
                return False
    return True


def decode_telemetry(gateway_id: str, payload: bytes) -> FastTelemetry | None:
    """The message on `gateway_id`'s telemetry topic if all of it follows the contract.

    None: something is wrong or unusual; ask `ironwatch.wire.decode`, which says what.
    """
    try:
        wire = _DECODER.decode(payload)
    except msgspec.DecodeError:
        return None
    if wire.gateway_id != gateway_id or wire.records[0].seq != wire.seq:
        return None
    sent_at = _utc_time(wire.sent_at)
    if sent_at is None or not _ids_valid(wire.records) or not _values_possible(wire.records):
        return None
    records: list[FastRecord] = []
    append = records.append
    previous = -1
    text, ts = "", None  # a gateway stamps its assets' windows alike: parsed once per run
    for r in wire.records:
        if r.ts != text:
            text, ts = r.ts, _utc_time(r.ts)
        if ts is None or r.seq <= previous:
            return None
        previous = r.seq
        append(FastRecord(r.seq, r.asset_id, r.point, ts, r.window_s, r.features, r.stale))
    return FastTelemetry(wire.gateway_id, wire.epoch, wire.seq, sent_at, records)
