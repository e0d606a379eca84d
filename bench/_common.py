"""Helpers shared by the benchmark scripts (imported as `_common`: they run as scripts)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """The shortest wall-clock time of `repeats` calls of `fn`, in seconds."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return float(best)
