"""Feature records as InfluxDB line protocol, formatted at a few microseconds per record.

The text is the one influxdb-client's `Point` writes (`point_lines`, kept as the reference
and checked against it by a differential test): tags and fields sorted by name, keys and
tag values escaped as Point escapes them, floats as `repr` without a trailing ".0", `seq`
as an integer (`42i`), `stale` as a boolean, the timestamp in ns. Point costs ~30 µs per
record of 20 features; most of it is per-field Python. Here:

- a series' measurement and tag prefix (gateway, epoch, asset, point) is escaped and
  formatted once and cached, since the same series come back every few seconds;
- a feature-name set is sorted once into a plan (the `name=` keys in field order, where
  the three meta fields go, an itemgetter that takes the values in that order);
- the values of a record are formatted in one call to msgspec's JSON encoder, whose
  shortest round-trip digits are repr's; repr differs only in notation below 1e-4 and from
  1e16 up (`1e-05`, `1e+16` against `0.00001`, `1e16`), so a record with such a value,
  a non-finite one or a non-number goes through the exact per-field path instead.
"""

# influxdb-client ships no type hints for Point's builder methods.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import add, itemgetter
from typing import Any

import msgspec

from cloud.telemetry._frame import datetime_to_ns
from cloud.telemetry._store import StorableRecord

__all__ = ["MEASUREMENT", "META_FIELDS", "LineFormatter", "point_lines", "to_lines"]

MEASUREMENT = "features"
# Field names besides the features; a feature may not use them (none of the contract's do).
META_FIELDS = ("seq", "window_s", "stale")

# influxdb-client's escapes (write/point.py): the same tables, so the text is the same.
_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t",
                                     "\r": r"\r"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t",
                             "\r": r"\r"})

# Past these sizes a cache is dropped and refilled (a miss costs ~2 µs): ~30 MB at most.
_MAX_SERIES = 1 << 16
_MAX_PLANS = 1 << 10

_encode = msgspec.json.Encoder().encode


def point_lines(gateway_id: str, records: Sequence[StorableRecord], epoch: str = "") -> list[str]:
    """The reference: one line per record serialised by influxdb-client's Point (slow)."""
    from influxdb_client.client.write.point import Point
    from influxdb_client.domain.write_precision import WritePrecision

    lines = []
    for r in records:
        p = Point(MEASUREMENT).tag("gateway", gateway_id)
        if epoch:
            p = p.tag("epoch", epoch)
        p = (
            p.tag("asset", r.asset_id)
            .tag("point", r.point)
            .time(datetime_to_ns(r.ts), WritePrecision.NS)
        )
        for name, value in r.features.items():
            if value is not None:  # a missing value is an absent field, read back as NaN
                p.field(name, float(value))
        p.field("seq", int(r.seq)).field("window_s", float(r.window_s))
        p.field("stale", r.stale)
        lines.append(p.to_line_protocol())
    return lines


def _escape_tag_value(value: str) -> str:
    escaped = value.translate(_ESCAPE_KEY)
    return escaped + " " if escaped.endswith("\\") else escaped  # as Point does


def series_prefix(gateway_id: str, epoch: str, asset_id: str, point: str) -> str:
    """`features,asset=..,epoch=..,gateway=..,point=.. `: tags sorted, empty ones left out."""
    tags = [f"{key}={value}" for key, value in (
        ("asset", _escape_tag_value(asset_id)), ("epoch", _escape_tag_value(epoch)),
        ("gateway", _escape_tag_value(gateway_id)), ("point", _escape_tag_value(point)),
    ) if value]
    head = MEASUREMENT.translate(_ESCAPE_MEASUREMENT)
    return f"{head},{','.join(tags)} " if tags else f"{head} "


def _format_value(value: Any) -> str | None:
    """One field value as Point writes it; None when Point leaves the field out."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if not math.isfinite(value):
        return None
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    """How the records with one feature-name set are formatted."""

    names: tuple[str, ...]  # the features in field order (meta names left out)
    values: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # their values in that order
    keys: tuple[str, ...]  # escaped `name=` of every field, meta ones included, in order
    at: tuple[int, int, int]  # where seq, stale and window_s stand among the fields

    @classmethod
    def of(cls, names: Sequence[str]) -> _FieldPlan:
        features = tuple(sorted(set(names) - set(META_FIELDS)))
        values: Callable[[Mapping[str, Any]], tuple[Any, ...]]
        if len(features) >= 2:
            values = itemgetter(*features)
        elif features:
            only = features[0]
            values = lambda f: (f[only],)  # noqa: E731
        else:
            values = lambda f: ()  # noqa: E731
        every = sorted((*features, *META_FIELDS))
        keys = tuple(name.translate(_ESCAPE_KEY) + "=" for name in every)
        at = (every.index("seq"), every.index("stale"), every.index("window_s"))
        return cls(features, values, keys, at)


class LineFormatter:
    """Formats records as line protocol, keeping the series prefixes and plans it made."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str, str], str] = {}
        self._plans: dict[tuple[str, ...], _FieldPlan] = {}

    def lines(
        self, gateway_id: str, records: Sequence[StorableRecord], epoch: str = ""
    ) -> list[str]:
        """One line per record: the same text as `point_lines`."""
        series = self._series
        plans = self._plans
        if len(series) > _MAX_SERIES:
            series.clear()
        if len(plans) > _MAX_PLANS:
            plans.clear()
        out: list[str] = []
        append = out.append
        for r in records:
            feats = r.features
            names = tuple(feats)
            plan = plans.get(names)
            if plan is None:
                plan = plans[names] = _FieldPlan.of(names)
            key = (gateway_id, epoch, r.asset_id, r.point)
            prefix = series.get(key)
            if prefix is None:
                prefix = series[key] = series_prefix(*key)
            encoded = _encode(plan.values(feats))
            window = repr(r.window_s)
            # "e": an exponent, true or false; "0.0000": maybe below 1e-4 (repr's notation
            # differs there); "n" in window_s: nan or inf. Rare: formatted field by field.
            if b"e" in encoded or b"0.0000" in encoded or "e" in window or "n" in window:
                fields = self._exact_fields(r, plan)
            else:
                tokens = encoded[1:-1].decode().split(",") if plan.names else []
                seq_at, stale_at, window_at = plan.at
                tokens.insert(seq_at, f"{r.seq}i")
                tokens.insert(stale_at, "true" if r.stale else "false")
                tokens.insert(window_at, window)
                if b"n" in encoded:  # null: a missing value, left out
                    fields = ",".join([k + t for k, t in zip(plan.keys, tokens, strict=True)
                                       if t != "null"])
                else:
                    fields = ",".join(map(add, plan.keys, tokens))
                # Point drops a float's trailing ".0"; only a value can end in ".0" before
                # a comma (a key ends in "=", an escaped comma is "\,").
                fields = (fields + ",").replace(".0,", ",")[:-1]
            append(f"{prefix}{fields} {datetime_to_ns(r.ts)}")
        return out

    @staticmethod
    def _exact_fields(r: StorableRecord, plan: _FieldPlan) -> str:
        feats = r.features
        values: dict[str, Any] = {n: float(v) for n in plan.names
                                  if (v := feats[n]) is not None}
        values.update(seq=int(r.seq), window_s=float(r.window_s), stale=r.stale)
        parts = []
        for name in sorted(values):
            text = _format_value(values[name])
            if text is not None:
                parts.append(name.translate(_ESCAPE_KEY) + "=" + text)
        return ",".join(parts)


_FORMATTER = LineFormatter()


def to_lines(gateway_id: str, records: Sequence[StorableRecord], epoch: str = "") -> list[str]:
    """One line-protocol line per record (the text influxdb-client's Point would write)."""
    return _FORMATTER.lines(gateway_id, records, epoch)
