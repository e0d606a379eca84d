"""New telemetry rows for one scoring round, keyed by (asset, point), sorted by time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cloud.pipeline._state import point_key

__all__ = ["Batch"]

FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.str_]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Batch:
    """Columnar rows: one key, asset and timestamp (UTC epoch seconds) per row, NaN = missing."""

    keys: StrArray
    asset_ids: StrArray
    points: StrArray
    ts_s: FloatArray
    values: FloatArray
    feature_names: list[str]

    @classmethod
    def build(
        cls,
        asset_ids: StrArray,
        points: StrArray,
        ts_s: FloatArray,
        values: FloatArray,
        feature_names: list[str],
    ) -> Batch:
        """Build a batch sorted by (key, time), so per-key windows are contiguous."""
        asset_ids = np.asarray(asset_ids, dtype=str)
        points = np.asarray(points, dtype=str)
        keys = np.asarray(
            [point_key(a, p) for a, p in zip(asset_ids.tolist(), points.tolist(), strict=True)],
            dtype=str,
        )
        ts_s = np.asarray(ts_s, dtype=np.float64)
        order = np.lexsort((ts_s, keys)) if len(keys) else np.zeros(0, dtype=np.int64)
        return cls(
            keys=keys[order],
            asset_ids=asset_ids[order],
            points=points[order],
            ts_s=ts_s[order],
            values=np.asarray(values, dtype=np.float64).reshape(len(keys), len(feature_names))[
                order
            ],
            feature_names=list(feature_names),
        )

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, mask: BoolArray | npt.NDArray[np.intp]) -> Batch:
        return Batch(
            keys=self.keys[mask],
            asset_ids=self.asset_ids[mask],
            points=self.points[mask],
            ts_s=self.ts_s[mask],
            values=self.values[mask],
            feature_names=self.feature_names,
        )

    def column(self, name: str) -> FloatArray:
        """One feature as a column; all NaN when the batch does not carry it."""
        if name in self.feature_names:
            return self.values[:, self.feature_names.index(name)]
        return np.full(len(self), np.nan)

    def rank_in_key(self) -> npt.NDArray[np.int64]:
        """0-based position of each row within its key (rows are sorted by key)."""
        if not len(self):
            return np.zeros(0, dtype=np.int64)
        starts = np.r_[True, self.keys[1:] != self.keys[:-1]]
        start_idx = np.maximum.accumulate(np.where(starts, np.arange(len(self)), 0))
        return (np.arange(len(self)) - start_idx).astype(np.int64)

    @classmethod
    def concat(cls, batches: list[Batch]) -> Batch:
        """Rows of several batches in one, columns the union of theirs, re-sorted by key."""
        parts = [b for b in batches if len(b)]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return batches[0]
        names = list(dict.fromkeys(n for b in parts for n in b.feature_names))
        values = []
        for b in parts:
            block = np.full((len(b), len(names)), np.nan)
            block[:, [names.index(n) for n in b.feature_names]] = b.values
            values.append(block)
        keys = np.concatenate([b.keys for b in parts])
        ts_s = np.concatenate([b.ts_s for b in parts])
        order = np.lexsort((ts_s, keys))
        return cls(
            keys=keys[order],
            asset_ids=np.concatenate([b.asset_ids for b in parts])[order],
            points=np.concatenate([b.points for b in parts])[order],
            ts_s=ts_s[order],
            values=np.vstack(values)[order],
            feature_names=names,
        )

    def key_bounds(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Start and end (exclusive) row of each key's run (rows are sorted by key)."""
        if not len(self):
            empty = np.zeros(0, dtype=np.intp)
            return empty, empty
        starts = np.flatnonzero(np.r_[True, self.keys[1:] != self.keys[:-1]])
        return starts, np.r_[starts[1:], len(self)].astype(np.intp)
