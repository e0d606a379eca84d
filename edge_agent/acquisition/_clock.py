"""Capture time: a sensor's running sample counter mapped to UTC on the gateway.

The firmware stamps every sample block with the index of its first sample on a counter
that runs from the device's start (`first_sample_index`), not with a wall-clock time. A
block that reaches the gateway at time `arrival` was captured no later than that, so
`arrival - end_index / fs` bounds the UTC time of sample 0 from above; the smallest bound
over recent blocks is the best estimate, because transport delay only ever adds to it.
Windows are then stamped `t0 + index / fs`: a burst sensor's windows carry the time they
were sampled, not when the gateway got round to them, and a replayed buffer keeps its
own times.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime, timedelta

__all__ = ["SampleClock"]


class SampleClock:
    """Device sample counter -> UTC, from the arrival times of sample blocks.

    The estimate is a sliding minimum over `horizon_s` of arrivals, so a device clock that
    drifts against the gateway's (tens of ppm) is followed. It starts again when the counter
    goes backwards (the device restarted) or the sample rate changes.
    """

    def __init__(self, horizon_s: float = 600.0) -> None:
        if horizon_s <= 0:
            raise ValueError("horizon_s must be > 0")
        self.horizon_s = horizon_s
        self.restarts = 0
        """Times the anchor started again (device restart, new sample rate)."""
        self._fs: float | None = None
        self._next_index: int | None = None
        # (monotonic arrival s, implied UTC of sample 0 as POSIX s), increasing implied times.
        self._window: deque[tuple[float, float]] = deque()

    def observe(
        self, first_index: int, n_samples: int, sample_rate_hz: float,
        arrival: datetime | None = None,
    ) -> None:
        """A block of `n_samples` starting at `first_index` arrived at `arrival` (now)."""
        if sample_rate_hz <= 0:
            raise ValueError("sample_rate_hz must be > 0")
        arrived = (arrival or datetime.now(UTC)).timestamp()
        mono = time.monotonic()
        if self._fs is not None and (
            sample_rate_hz != self._fs
            or (self._next_index is not None and first_index < self._next_index)
        ):
            self._window.clear()
            self.restarts += 1
        self._fs = sample_rate_hz
        self._next_index = first_index + n_samples
        implied = arrived - (first_index + n_samples) / sample_rate_hz
        while self._window and self._window[-1][1] >= implied:
            self._window.pop()
        self._window.append((mono, implied))
        while self._window and mono - self._window[0][0] > self.horizon_s:
            self._window.popleft()

    def to_utc(self, index: int) -> datetime | None:
        """UTC capture time of sample `index`; None before the first block."""
        if not self._window or self._fs is None:
            return None
        t0 = self._window[0][1]
        return datetime.fromtimestamp(t0, UTC) + timedelta(seconds=index / self._fs)
