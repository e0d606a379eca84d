"""The alert rule: an anomaly must persist (k of the last n windows) before it counts.

A single spike must not open an alert, and a condition must settle before it clears:
raise when at least `k` of the last `n` windows of an (asset, point) are over the
anomaly threshold, call the condition healthy again only when at most `clear_at` of
the last `n` are; in between the previous state holds (hysteresis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PersistenceRule", "RollingFlags"]

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PersistenceRule:
    """k-of-n persistence with a lower clear level; validated on construction."""

    k: int = 3
    n: int = 5
    clear_at: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n:
            raise ValueError(f"persistence needs 1 <= k <= n, got k={self.k}, n={self.n}")
        if not 0 <= self.clear_at < self.k:
            raise ValueError(f"clear_at must be in [0, k), got {self.clear_at}")


@dataclass(frozen=True)
class RollingFlags:
    """Per-group outcome of one round: counts over the last n windows and the new carry."""

    last_count: IntArray
    max_count: IntArray
    carry: list[BoolArray]


def rolling_counts(
    group: IntArray, flags: BoolArray, carry: list[BoolArray], n: int
) -> RollingFlags:
    """Count flags in the trailing n windows of each group, continuing from `carry`.

    `group` holds group codes 0..G-1 with rows sorted by (group, time); `carry[g]` is
    the tail (at most n-1 flags) of group g from earlier rounds. Vectorised: one cumsum
    over the concatenation, with windows clipped at each group's start.
    """
    n_groups = len(carry)
    group = np.asarray(group, dtype=np.int64)
    flags = np.asarray(flags, dtype=bool)
    carry_len = np.array([len(c) for c in carry], dtype=np.int64)
    new_len = np.bincount(group, minlength=n_groups).astype(np.int64)
    # Interleave each group's carried tail before its new rows.
    seq_group = np.concatenate(
        [np.repeat(np.arange(n_groups), carry_len), group]
    ) if n_groups else np.zeros(0, dtype=np.int64)
    seq_flags = np.concatenate([*carry, flags]) if n_groups else np.zeros(0, dtype=bool)
    is_new = np.concatenate([np.zeros(int(carry_len.sum()), bool), np.ones(len(group), bool)])
    order = np.argsort(seq_group, kind="stable")
    seq_group, seq_flags, is_new = seq_group[order], seq_flags[order], is_new[order]

    sizes = carry_len + new_len
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    csum = np.concatenate([[0], np.cumsum(seq_flags.astype(np.int64))])
    idx = np.arange(len(seq_flags), dtype=np.int64)
    lo = np.maximum(idx - n + 1, starts[seq_group]) if len(idx) else idx
    window = csum[idx + 1] - csum[lo]

    last_count = np.zeros(n_groups, dtype=np.int64)
    max_count = np.zeros(n_groups, dtype=np.int64)
    nonempty = sizes > 0
    ends = starts + sizes - 1
    last_count[nonempty] = window[ends[nonempty]]
    if is_new.any():
        np.maximum.at(max_count, seq_group[is_new], window[is_new])
    tail = max(n - 1, 0)
    new_carry = [
        seq_flags[max(s, s + z - tail): s + z].copy() for s, z in zip(starts, sizes, strict=True)
    ]
    return RollingFlags(last_count=last_count, max_count=max_count, carry=new_carry)
