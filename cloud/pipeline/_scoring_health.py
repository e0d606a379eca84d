"""Is scoring alive, and which assets can it not score? Per-asset failures and round lag.

Every model call in a round is made per asset or falls back to per asset, and a failure
lands here: the asset is marked failing (stage, error, since when, how often), its round
is skipped, and the traceback is logged once — again only when the error changes, not
every round for ever. `status(now)` says `degraded` with the reasons when some asset
fails or when no round has completed for `lag_rounds` intervals; the API's health
endpoint, the asset API and the dashboard read it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

__all__ = ["AssetScoring", "ScoringFailure", "ScoringHealth", "ScoringStage", "ScoringStatus"]

log = logging.getLogger(__name__)

# Where in a round a model call failed.
ScoringStage = Literal[
    "physics", "fit", "anomaly", "verdict", "diagnosis", "rul", "evidence", "protection"
]
# No completed round within this many intervals: scoring lags.
LAG_ROUNDS = 5
# ...but never sooner than this: a fit or a diagnosis can take a few seconds on a small box.
MIN_LAG_S = 30.0
_MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class ScoringFailure:
    """Why an asset is not being scored: where, what, since when, and how many rounds."""

    stage: ScoringStage
    error: str
    since: datetime
    last_at: datetime
    rounds: int = 1

    @property
    def summary(self) -> str:
        return f"{self.stage}: {self.error}"


@dataclass(frozen=True)
class AssetScoring:
    """One asset's scoring state: last round it was scored in, and its failure if any."""

    asset_id: str
    last_scored_at: datetime | None = None
    failure: ScoringFailure | None = None


@dataclass(frozen=True)
class ScoringStatus:
    """The scoring service at a glance, for /health."""

    status: Literal["ok", "degraded"]
    reasons: list[str]
    last_round_at: datetime | None
    interval_s: float
    rounds_failed: int
    failures_total: int
    failing: dict[str, ScoringFailure] = field(default_factory=dict)


def _describe(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


class ScoringHealth:
    """Thread-safe record of scoring failures and progress; written by the pipeline only."""

    def __init__(
        self,
        interval_s: float,
        *,
        lag_rounds: int = LAG_ROUNDS,
        min_lag_s: float = MIN_LAG_S,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if interval_s <= 0 or lag_rounds < 1:
            raise ValueError("interval_s must be > 0 and lag_rounds >= 1")
        self.interval_s = interval_s
        self.lag_after = timedelta(seconds=max(lag_rounds * interval_s, min_lag_s))
        self._clock = clock or (lambda: datetime.now(UTC))
        self._started_at = self._clock()
        self._lock = threading.Lock()
        self._assets: dict[str, AssetScoring] = {}
        self._last_round_at: datetime | None = None
        self._round_error: str | None = None
        self.rounds_failed = 0
        self.failures_total = 0

    # -- written by the pipeline ---------------------------------------------------------------
    def failed(
        self, asset_id: str, stage: ScoringStage, err: BaseException, now: datetime
    ) -> None:
        """A model call for `asset_id` raised: count it; log the traceback if it is new."""
        error = _describe(err)
        with self._lock:
            self.failures_total += 1
            state = self._assets.get(asset_id, AssetScoring(asset_id))
            old = state.failure
            if old is not None and old.stage == stage and old.error == error:
                failure = replace(old, last_at=now, rounds=old.rounds + 1)
                new = False
            else:
                since = old.since if old is not None else now
                failure = ScoringFailure(stage=stage, error=error, since=since, last_at=now)
                new = True
            self._assets[asset_id] = replace(state, failure=failure)
        if new:
            log.error("scoring %s failed at %s; its rounds are skipped until it recovers",
                      asset_id, stage, exc_info=err)
        else:
            log.debug("scoring %s still failing at %s (%d rounds): %s",
                      asset_id, stage, failure.rounds, error)

    def scored(self, asset_id: str, now: datetime) -> None:
        """`asset_id` went through a round without a failure."""
        with self._lock:
            state = self._assets.get(asset_id, AssetScoring(asset_id))
            old = state.failure
            self._assets[asset_id] = AssetScoring(asset_id, last_scored_at=now)
        if old is not None:
            log.info("scoring %s recovered after %d failed rounds (%s)",
                     asset_id, old.rounds, old.summary)

    def forget(self, asset_id: str) -> None:
        """The asset is gone from the fleet: nothing to show for it."""
        with self._lock:
            self._assets.pop(asset_id, None)

    def is_failing(self, asset_id: str) -> bool:
        with self._lock:
            state = self._assets.get(asset_id)
            return state is not None and state.failure is not None

    def round_completed(self, now: datetime) -> None:
        with self._lock:
            self._last_round_at = now
            recovered, self._round_error = self._round_error, None
        if recovered is not None:
            log.info("scoring rounds complete again (after %s)", recovered)

    def round_failed(self, err: BaseException) -> None:
        """A whole round raised outside any one asset's model calls; logged once per error."""
        error = _describe(err)
        with self._lock:
            self.rounds_failed += 1
            new, self._round_error = error != self._round_error, error
        if new:
            log.error("scoring round failed; retrying every %.1f s", self.interval_s,
                      exc_info=err)
        else:
            log.debug("scoring round failed again: %s", error)

    # -- read by the API and the dashboard -----------------------------------------------------
    def asset(self, asset_id: str) -> AssetScoring | None:
        with self._lock:
            return self._assets.get(asset_id)

    def status(self, now: datetime | None = None) -> ScoringStatus:
        now = now or self._clock()
        with self._lock:
            failing = {a: s.failure for a, s in self._assets.items() if s.failure is not None}
            last, round_error = self._last_round_at, self._round_error
            rounds_failed, failures_total = self.rounds_failed, self.failures_total
        reasons = [
            f"scoring failed for {a} since {f.since.isoformat(timespec='seconds')}: {f.summary}"
            for a, f in sorted(failing.items())
        ]
        behind = now - (last or self._started_at)
        if behind > self.lag_after:
            done = "no round completed" if last is None else "last round completed"
            reasons.append(
                f"scoring lags: {done} {behind.total_seconds():.0f} s ago"
                f" (interval {self.interval_s:g} s)"
                + (f"; last error {round_error}" if round_error else "")
            )
        return ScoringStatus(
            status="degraded" if reasons else "ok",
            reasons=reasons,
            last_round_at=last,
            interval_s=self.interval_s,
            rounds_failed=rounds_failed,
            failures_total=failures_total,
            failing=failing,
        )
