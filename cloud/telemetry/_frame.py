"""FeatureFrame: telemetry as columns (one array per field, one float matrix of features).

Scoring is vectorised over assets x windows, so the store hands out arrays rather than
dicts; a missing feature value is NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from ironwatch.wire import FeatureRecord

__all__ = ["FeatureFrame", "TimeLike", "datetime_to_ns", "to_ns"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]
BoolArray = npt.NDArray[np.bool_]

TimeLike = datetime | float | int
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def datetime_to_ns(ts: datetime) -> int:
    """Exact UTC epoch nanoseconds (float seconds would round microseconds away)."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: telemetry times are UTC and must say so")
    return ((ts - _EPOCH) // _US) * 1000


def to_ns(value: TimeLike) -> int:
    """A datetime, or epoch seconds as a number, as epoch nanoseconds."""
    if isinstance(value, datetime):
        return datetime_to_ns(value)
    return round(float(value) * 1e9)


@dataclass(frozen=True, eq=False)
class FeatureFrame:
    """Rows of feature records in columns, ordered by time; `values[:, j]` is feature_names[j]."""

    gateway_ids: StrArray
    seqs: IntArray
    asset_ids: StrArray
    points: StrArray
    ts_ns: IntArray
    window_s: FloatArray
    stale: BoolArray
    values: FloatArray
    feature_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def ts_s(self) -> FloatArray:
        """Timestamps as UTC epoch seconds (float), the unit the scoring pipeline uses."""
        return self.ts_ns.astype(np.float64) / 1e9

    def column(self, name: str) -> FloatArray:
        """One feature as a column; all NaN when no row carries it."""
        if name in self.feature_names:
            return self.values[:, self.feature_names.index(name)]
        return np.full(len(self), np.nan)

    def take(self, index: BoolArray | npt.NDArray[np.intp]) -> FeatureFrame:
        """The rows selected by a boolean mask or an index array."""
        return FeatureFrame(
            gateway_ids=self.gateway_ids[index],
            seqs=self.seqs[index],
            asset_ids=self.asset_ids[index],
            points=self.points[index],
            ts_ns=self.ts_ns[index],
            window_s=self.window_s[index],
            stale=self.stale[index],
            values=self.values[index],
            feature_names=self.feature_names,
        )

    @classmethod
    def empty(cls, feature_names: Sequence[str] = ()) -> FeatureFrame:
        return cls(
            gateway_ids=np.zeros(0, dtype=str),
            seqs=np.zeros(0, dtype=np.int64),
            asset_ids=np.zeros(0, dtype=str),
            points=np.zeros(0, dtype=str),
            ts_ns=np.zeros(0, dtype=np.int64),
            window_s=np.zeros(0, dtype=np.float64),
            stale=np.zeros(0, dtype=bool),
            values=np.zeros((0, len(feature_names)), dtype=np.float64),
            feature_names=tuple(feature_names),
        )

    @classmethod
    def from_columns(
        cls,
        *,
        gateway_ids: Sequence[str],
        seqs: Sequence[int],
        asset_ids: Sequence[str],
        points: Sequence[str],
        ts_ns: Sequence[int],
        window_s: Sequence[float],
        stale: Sequence[bool],
        values: FloatArray,
        feature_names: Sequence[str],
    ) -> FeatureFrame:
        """Build a frame from plain columns, sorted by (time, gateway, seq)."""
        n = len(seqs)
        if n == 0:
            return cls.empty(feature_names)
        frame = cls(
            gateway_ids=np.asarray(gateway_ids, dtype=str),
            seqs=np.asarray(seqs, dtype=np.int64),
            asset_ids=np.asarray(asset_ids, dtype=str),
            points=np.asarray(points, dtype=str),
            ts_ns=np.asarray(ts_ns, dtype=np.int64),
            window_s=np.asarray(window_s, dtype=np.float64),
            stale=np.asarray(stale, dtype=bool),
            values=np.asarray(values, dtype=np.float64).reshape(n, len(feature_names)),
            feature_names=tuple(feature_names),
        )
        order = np.lexsort((frame.seqs, frame.gateway_ids, frame.ts_ns))
        return frame.take(order)

    @classmethod
    def from_records(
        cls,
        rows: Iterable[tuple[str, FeatureRecord]],
        feature_names: Sequence[str] | None = None,
    ) -> FeatureFrame:
        """Build a frame from (gateway_id, record) pairs; used by tests and simple backends."""
        pairs = list(rows)
        names = (
            list(feature_names)
            if feature_names is not None
            else sorted({k for _, r in pairs for k in r.features})
        )
        col = {name: j for j, name in enumerate(names)}
        values = np.full((len(pairs), len(names)), np.nan)
        for i, (_, r) in enumerate(pairs):
            for k, v in r.features.items():
                j = col.get(k)
                if j is not None and v is not None:
                    values[i, j] = v
        return cls.from_columns(
            gateway_ids=[g for g, _ in pairs],
            seqs=[r.seq for _, r in pairs],
            asset_ids=[r.asset_id for _, r in pairs],
            points=[r.point for _, r in pairs],
            ts_ns=[datetime_to_ns(r.ts) for _, r in pairs],
            window_s=[r.window_s for _, r in pairs],
            stale=[r.stale for _, r in pairs],
            values=values,
            feature_names=names,
        )
