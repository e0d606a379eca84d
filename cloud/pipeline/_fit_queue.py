"""Which commissioned points the detector fits this round: a fit budget, oldest-ready first.

A point is ready to fit when its commissioning completes, or when a worker takes it over
(or restarts) with its baseline in the database. Fitting fifty thousand points at once
takes tens of seconds; a round that did so would stop every alert for as long. So each
round fits only as many ready points as its budget allows, estimated from the measured
cost per point of the fits before it, and the rest wait for the next rounds in the order
they became ready, so none starves. Points already fitted are scored every round
meanwhile. Pure bookkeeping: the pipeline does the fitting and reports the time it took.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable

__all__ = ["FitQueue"]

# Seconds per point assumed before any fit was measured: what a fit of 30 rows of 18
# features measured on a shared, busy core (about 5 times an idle one's).
FIRST_COST_S = 4e-3
# Weight of the newest measurement in the running cost per point.
COST_WEIGHT = 0.5


class FitQueue:
    """Points waiting for the detector, with the time each became ready."""

    def __init__(self, budget_s: float, *, first_cost_s: float = FIRST_COST_S) -> None:
        if not budget_s > 0:
            raise ValueError(f"budget_s must be > 0, got {budget_s!r}")
        if not first_cost_s > 0:
            raise ValueError(f"first_cost_s must be > 0, got {first_cost_s!r}")
        self.budget_s = float(budget_s)
        #: Running estimate of the seconds one point's fit costs (fleet share included).
        self.cost_per_point_s = float(first_cost_s)
        self._ready: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._ready)

    def __contains__(self, key: object) -> bool:
        return key in self._ready

    @property
    def keys(self) -> set[str]:
        return set(self._ready)

    def add(self, key: str, ready_s: float) -> None:
        """`key` is ready since `ready_s`; a key already waiting keeps its earlier time."""
        before = self._ready.get(key)
        self._ready[key] = ready_s if before is None else min(before, ready_s)

    def discard(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._ready.pop(key, None)

    def oldest_ready_s(self) -> float | None:
        return min(self._ready.values(), default=None)

    def capacity(self) -> int:
        """How many points one round's budget fits at the current cost estimate (≥ 1)."""
        return max(1, math.floor(self.budget_s / self.cost_per_point_s))

    def take(self) -> list[str]:
        """The oldest-ready points that fit in this round's budget, removed from the queue.

        Ties in ready time go by key, so the order is the same on every worker and restart.
        """
        if not self._ready:
            return []
        n = self.capacity()
        if n >= len(self._ready):
            chosen = sorted(self._ready, key=lambda k: (self._ready[k], k))
        else:
            chosen = [k for _, k in heapq.nsmallest(
                n, ((t, k) for k, t in self._ready.items()))]
        for key in chosen:
            del self._ready[key]
        return chosen

    def measured(self, points: int, seconds: float) -> None:
        """A fit of `points` points took `seconds`: update the cost per point."""
        if points <= 0 or not math.isfinite(seconds) or seconds < 0:
            return
        cost = max(seconds / points, 1e-7)
        self.cost_per_point_s = (1.0 - COST_WEIGHT) * self.cost_per_point_s + COST_WEIGHT * cost
