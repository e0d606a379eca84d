"""The scoring round: new telemetry → commissioning → anomaly → diagnosis/RUL → alerts.

One round reads every asset's new rows in one query, scores them in one vectorised
call, and turns persistent anomalies into alerts and work orders through the domain
layer. State (cursors, baselines, persistence tails) is saved after each round.

A model that raises for one asset never stops the fleet: a fleet-wide call that fails
is retried per asset to find the one that fails, and that asset's round is skipped,
counted and shown (`ScoringHealth`) while every other asset is scored as usual.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud import metrics
from cloud.db.models import OPEN_ALERT_STATES, Alert, Asset, Verdict, WorkOrder
from cloud.domain.alerts import clear_condition, upsert_alert
from cloud.domain.catalogue import FailureModeCatalogue
from cloud.domain.hour_meter import HourMeterReport, record_running_hours
from cloud.domain.policy import ServiceLevelPolicy
from cloud.domain.workorders import open_from_alert
from cloud.gcpause import paused_cyclic_gc
from cloud.pipeline._alert_rule import PersistenceRule, rolling_counts
from cloud.pipeline._assessment import Assessment, AssetView, KeyView
from cloud.pipeline._batch import Batch
from cloud.pipeline._evidence import build_evidence
from cloud.pipeline._fit_queue import FitQueue
from cloud.pipeline._leases import Leases
from cloud.pipeline._model_suite import RUL_LEAD_IN_S, ModelSuite, is_trended
from cloud.pipeline._protection import PROTECTION_MODES
from cloud.pipeline._protection_alerts import ProtectionRules
from cloud.pipeline._scoring_health import ScoringHealth, ScoringStage
from cloud.pipeline._severity import decide_severity
from cloud.pipeline._state import (
    KeyState,
    PipelineState,
    align_columns,
    point_key,
    split_key,
)
from cloud.pipeline._state_db import StateStore
from cloud.settings import CloudSettings
from cloud.telemetry import FeatureFrame, TimeLike
from ironwatch.physics import AssetPhysics

__all__ = ["FeatureSource", "RoundReport", "ScoringPipeline"]

log = logging.getLogger(__name__)

# An asset that stopped reporting must not pin the query start in the past for ever.
MAX_LOOKBACK = timedelta(days=7)
HEALTH_INDICATOR = "velocity_rms_mms"
# Bounded history for the RUL trend: enough windows for a fit, little memory per asset.
HI_HISTORY = 2000
# A quiet point keeps this much health-indicator history (capture time, s).
QUIET_HI_S = 2.0 * RUL_LEAD_IN_S
ANOMALY_MODE = "unknown_anomaly"
# A gateway that did not answer a snapshot request is asked again after this long.
SNAPSHOT_RETRY = timedelta(minutes=1)
# How long a new alert waits for the waveform it asked for before opening undiagnosed.
SNAPSHOT_WAIT = timedelta(seconds=15)
# The newest rows of an alert, up to its verdict, handed to the detector with it.
VERDICT_ROWS = 500
# The round's shared query starts at most this far back (or 10 intervals); a point whose
# cursor is older (a silent asset) is read by its own query, from its own cursor.
LATE_WINDOW_S = 60.0
# Assets per query of the points that are behind.
BEHIND_CHUNK = 200
# New assets whose earlier rows (before the shared window) one round reads back.
FRESH_ASSETS_PER_ROUND = 2000
# A full detector fit (fleet statistics included) when the fitted points have doubled
# since the last one and a full fit fits in a round's budget; otherwise only the new
# points are fitted (`refit`) against the fleet statistics of the last full fit.
FULL_FIT_GROWTH = 2.0
# Unless set, a round may spend this share of the fleet's record interval T (its median
# window spacing in capture time) fitting points, and at least this share of the scoring
# interval: a round stays well within T while a new fleet commissions in a few minutes.
FIT_BUDGET_SHARE_OF_T = 0.25
FIT_BUDGET_SHARE_OF_INTERVAL = 0.5
# Points whose window spacing sets T before the detector has measured it.
SPACING_SAMPLE = 1000
FloatArray = npt.NDArray[np.float64]


def _extend_trend(
    trend: dict[str, list[float]], new: dict[str, list[float]], rows: slice, keep: int,
) -> None:
    """Append this round's rows to each feature history, in place, keeping the last `keep`.

    Histories end with the newest row of `hi_t_s` (aligned to its tail; they may be
    shorter). A feature the point never reported (all NaN) is not kept.
    """
    n = rows.stop - rows.start
    for name, column in new.items():
        history = trend.get(name)
        added = column[rows]
        if history is None:
            if not any(math.isfinite(v) for v in added):  # never reported
                continue
            history = trend[name] = []
        history.extend(added)
    for name, history in trend.items():
        if name not in new:
            history.extend([math.nan] * n)
        if len(history) > keep:
            del history[: len(history) - keep]


def _trend_rows(t_s: FloatArray, raised: bool) -> int:
    """How many rows of feature history a point needs: since onset, or the lead-in only."""
    if raised or not len(t_s):
        return len(t_s)
    # Capture times are ascending: the lead-in is a binary search away.
    return len(t_s) - int(np.searchsorted(t_s, t_s[-1] - RUL_LEAD_IN_S, side="left"))


def _append(history: FloatArray, new: FloatArray, keep: int) -> FloatArray:
    """`history` then `new`, the last `keep` values: one copy, however long the history."""
    total = len(history) + len(new)
    if total <= keep:
        return np.concatenate((history, new))
    if len(new) >= keep:
        return new[len(new) - keep :].copy()
    return np.concatenate((history[total - keep :], new))


def _stage_of(err: BaseException) -> ScoringStage:
    """Which model an assessment error came from: RUL if raised inside it, else diagnosis."""
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.name == "_rul" or frame.filename.endswith(("models/rul.py", "models\\rul.py")):
            return "rul"
    return "diagnosis"


class FeatureSource(Protocol):
    """The part of the telemetry store the pipeline reads."""

    def query(
        self,
        *,
        asset_ids: Sequence[str] | None = None,
        point: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        features: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> FeatureFrame: ...


@dataclass
class RoundReport:
    """What one scoring round did; returned by `run_once` and logged."""

    at: datetime
    rows_read: int = 0
    rows_stale: int = 0  # stale repeats read and left out
    rows_commissioning: int = 0
    rows_scored: int = 0
    commissioned: list[str] = field(default_factory=list)
    over_threshold: int = 0
    alerts_upserted: list[int] = field(default_factory=list)
    work_orders: list[int] = field(default_factory=list)
    cleared: list[tuple[str, str]] = field(default_factory=list)
    snapshots_requested: list[str] = field(default_factory=list)
    verdicts_seen: int = 0
    verdicts_applied: int = 0
    verdicts_expired: int = 0
    protection_alerts: list[int] = field(default_factory=list)
    # Points and state rows written to the database, and their payload bytes.
    state_rows_written: int = 0
    state_bytes_written: int = 0
    # Points (re)fitted by the detector this round; whether that was a full fit; the time.
    refitted: int = 0
    full_fit: bool = False
    fit_s: float = 0.0
    # Commissioned points still waiting for the detector after this round, the age of the
    # oldest (s since it became ready), and rows of waiting points left unscored.
    fit_waiting: int = 0
    fit_oldest_wait_s: float | None = None
    rows_waiting_fit: int = 0
    # Leases this worker took and gave up this round (always empty on SQLite).
    assets_gained: int = 0
    assets_lost: int = 0
    # Assets whose rows went through the round, and those whose round was skipped.
    scored_assets: set[str] = field(default_factory=set)
    failed_assets: set[str] = field(default_factory=set)
    # What the round's rows added to the assets' running hours.
    running_hours: HourMeterReport = field(default_factory=HourMeterReport)


class ScoringPipeline:
    """Scores the fleet in rounds; `run_once(now)` is pure bookkeeping plus model calls."""

    def __init__(
        self,
        store: FeatureSource,
        session_factory: Callable[[], Session],
        settings: CloudSettings,
        *,
        clock: Callable[[], datetime] | None = None,
        rule: PersistenceRule | None = None,
        models: ModelSuite | None = None,
        state_dir: Path | None = None,
        policy: ServiceLevelPolicy | None = None,
        catalogue: FailureModeCatalogue | None = None,
        request_snapshot: Callable[[str, str | None, str], str] | None = None,
        leases: Leases | None = None,
    ) -> None:
        self.store = store
        self.session_factory = session_factory
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rule = rule or PersistenceRule()
        self.models = models or ModelSuite()
        self.state_dir = state_dir or Path(settings.data_dir) / "pipeline"
        self.policy = policy
        self.catalogue = catalogue
        self.request_snapshot = request_snapshot
        self._last_views: dict[str, KeyView] = {}
        self.state = PipelineState()
        self.state_store = StateStore(session_factory)
        self.leases = leases or Leases(session_factory, lease_s=settings.scoring_lease_s)
        # Verdicts with a higher id are looked at; each asset remembers what it took.
        self._verdict_mark = 0
        # Points at the last full fit; points the detector has fitted (or failed to fit).
        self._full_fit_keys = 0
        self._fitted: set[str] = set()
        # Commissioned points waiting for the detector, fitted within a budget per round.
        self.fit_queue = FitQueue(
            settings.scoring_fit_budget_s
            or FIT_BUDGET_SHARE_OF_INTERVAL * settings.scoring_interval_s
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_report: RoundReport | None = None
        self.health = ScoringHealth(settings.scoring_interval_s, clock=self.clock)
        # Assets whose baseline the detector could not be fitted on, with the error.
        self._unfit: dict[str, BaseException] = {}
        # Assets this worker has read back to their first row (leased workers).
        self._read_back: set[str] = set()
        self.protection = ProtectionRules(settings, policy=policy, catalogue=catalogue)
        if self.leases.all_mine:
            # One process scores everything: resume from the database (importing the file
            # state of an earlier version once). Workers load their assets as they lease them.
            self.state_store.import_directory(self.state_dir)
            self.state_store.load_into(self.state, readings=self.protection.readings)
            self._read_back_commissioning()
            self._verdict_mark = min(
                (self.state_store.verdict_seen(split_key(k)[0]) for k in self.state.keys),
                default=0,
            )
            self._warm_raised(list(self.state.keys))
            # Every commissioned point is fitted again, within the budget per round: the
            # first share now, the rest over the first rounds (a held alert's at once).
            self._queue_commissioned(list(self.state.keys), self.clock())
            self._fit_ready(self.clock(), None)
            held = self.state.waiting_assets()
            self._fit_held(held, self.clock(), None)
            self._resume_held(held)

    # -- background loop -------------------------------------------------------------------
    def start(self) -> None:
        """Run a round every `scoring_interval_s` on a daemon thread until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ironwatch-scoring", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        try:
            self.leases.release()
        except Exception as err:
            # The leases then expire on their own; another worker takes over a bit later.
            log.warning("giving back scoring leases failed: %s", err)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.scoring_interval_s):
            started = time.perf_counter()
            try:
                report = self.run_once(self.clock())
            except Exception as err:
                # A bad round must not kill scoring; the next round retries from the cursors.
                self.health.round_failed(err)
                metrics.scoring_round_failed(time.perf_counter() - started)
            else:
                metrics.scoring_round_completed(report, time.perf_counter() - started)

    # -- one round -------------------------------------------------------------------------
    def run_once(self, now: datetime) -> RoundReport:
        """Read, commission, score and act on everything that arrived since the last round."""
        if now.tzinfo is None:
            raise ValueError("run_once needs a timezone-aware UTC time")
        now = now.astimezone(UTC)
        with self._lock, paused_cyclic_gc():
            started = time.perf_counter()
            report = RoundReport(at=now)
            self._renew_leases(now, report)
            # Verdicts first, so this round's windows are judged by the corrected threshold.
            with self.session_factory() as session:
                self._expire_verdicts(session, now, report)
                report.verdicts_seen, report.verdicts_applied = self._apply_verdicts(
                    session, now, report
                )
            batch = self._read_new(now, report)
            report.rows_read = len(batch)
            self._keep_lease()
            self.protection.track(batch)
            scored = self._commission(batch, now, report) if len(batch) else batch
            self._keep_lease()
            self._fit_ready(now, report)
            self._keep_lease()
            if len(scored) and len(self.fit_queue):
                # Points not fitted yet are not scored: their rows count as waiting.
                unfitted = np.isin(scored.keys, list(self.fit_queue.keys))
                report.rows_waiting_fit = int(unfitted.sum())
                scored = scored.take(~unfitted)
            keys_scored = self._score(scored, now, report) if len(scored) else {}
            self._last_views.update(keys_scored)
            # An alert held for its snapshot is decided even if its asset sent nothing new.
            waiting = self.state.waiting_assets()
            for key, view in self._last_views.items():
                if split_key(key)[0] in waiting:
                    keys_scored.setdefault(key, view)
            with self.session_factory() as session:
                # Alerts, work orders and state commit together, and only for the assets
                # whose lease this worker still holds (all of them on SQLite).
                held = self.leases.fence(session)
                if held is not None:
                    keys_scored = {k: v for k, v in keys_scored.items()
                                   if split_key(k)[0] in held}
                    batch = batch.take(np.isin(batch.asset_ids, list(held)))
                if keys_scored:
                    self._act(session, keys_scored, now, report)
                try:  # running hours: their own savepoint, never the round's alerts
                    with session.begin_nested():
                        report.running_hours = record_running_hours(
                            session, asset_ids=batch.asset_ids, ts_s=batch.ts_s,
                            speed_rpm=batch.column("speed_rpm"),
                            velocity_rms_mms=batch.column(HEALTH_INDICATOR),
                            max_gap_s=self.settings.running_hours_max_gap_s,
                        )
                except Exception:
                    log.exception("running hours not accounted this round")
                self._protect(session, batch, now, report)
                saved = self.state_store.save(
                    session, self.state,
                    (lambda _a: True) if held is None else held.__contains__,
                    self.protection.readings,
                )
                session.commit()
            self.state.clean()
            if held is not None and self.leases.mine - held:
                # Lost while the round ran: nothing of theirs was written. Forget them; if
                # they are still this worker's next round, they are loaded afresh.
                gone = self.leases.mine - held
                self._forget(gone)
                self.leases.mine -= gone
                report.assets_lost += len(gone)
                report.scored_assets -= gone
            report.state_rows_written, report.state_bytes_written = saved.rows, saved.bytes
            for asset_id in sorted(report.scored_assets - report.failed_assets):
                self.health.scored(asset_id, now)
            self.health.round_completed(now)
            self.last_report = report
            if report.rows_read or report.alerts_upserted:
                log.info(
                    "scoring round: %d rows, %d commissioning, %d scored, %d over threshold,"
                    " %d alerts, %d work orders; %.2f s (%.2f s fitting, %d points waiting)",
                    report.rows_read, report.rows_commissioning, report.rows_scored,
                    report.over_threshold, len(report.alerts_upserted),
                    len(report.work_orders), time.perf_counter() - started, report.fit_s,
                    report.fit_waiting,
                )
            return report

    # -- leases ----------------------------------------------------------------------------
    def _renew_leases(self, now: datetime, report: RoundReport) -> None:
        """Renew this worker's leases; forget assets it lost, load those it gained."""
        change = self.leases.renew()
        if not self.leases.all_mine:
            metrics.scoring_leases(len(change.mine), len(change.gained), len(change.lost))
        if change.lost:
            report.assets_lost = len(change.lost)
            self._forget(change.lost)
        if change.gained:
            report.assets_gained = len(change.gained)
            keys = self.state_store.load_into(
                self.state, change.gained, readings=self.protection.readings
            )
            self._read_back_commissioning()
            self._verdict_mark = min(
                [self._verdict_mark, *(self.state_store.verdict_seen(a) for a in change.gained)]
            )
            self._warm_raised(keys)
            # Taken-over points are fitted within the round's budget, oldest first; those
            # of an asset whose new alert waits for its waveform at once.
            self._queue_commissioned(keys, now)
            self._fit_held(change.gained, now, report)
            self._resume_held(change.gained)

    def _fit_held(self, assets: set[str], now: datetime, report: RoundReport | None) -> None:
        """Fit the waiting points of those `assets` whose new alert waits for its waveform.

        There are a few at most; `_resume_held` scores their newest rows, so they cannot
        wait for the budget. The fleet statistics come from a round's share first.
        """
        held = assets & self.state.waiting_assets()
        if not held:
            return
        if not self.models.fitted:
            self._fit_ready(now, report)
        unfitted = {a for a in (split_key(k)[0] for k in self.fit_queue.keys) if a in held}
        if unfitted:
            self._refit(now, report, assets=unfitted)

    def _keep_lease(self) -> None:
        """Push this worker's lease on between the parts of a long round."""
        try:
            self.leases.keep_alive()
        except Exception as err:
            # The round goes on; if the lease runs out meanwhile, `fence` writes nothing.
            log.warning("keeping the scoring lease alive failed: %s", err)

    def _forget(self, assets: set[str]) -> None:
        """Drop everything remembered of assets another worker scores now."""
        self.state.forget_assets(assets)
        self.state_store.forget(assets)
        self.protection.forget(assets)
        for asset_id in assets:
            self._unfit.pop(asset_id, None)
        self._read_back -= assets
        gone = {k for k in self._fitted | self.fit_queue.keys if split_key(k)[0] in assets}
        self._fitted -= gone
        self.fit_queue.discard(gone)
        self._last_views = {k: v for k, v in self._last_views.items()
                            if split_key(k)[0] not in assets}

    def _mine(self, asset_id: str) -> bool:
        return self.leases.all_mine or asset_id in self.leases.mine

    # -- reading -----------------------------------------------------------------------------
    def _read_new(self, now: datetime, report: RoundReport) -> Batch:
        """This round's new rows of every point, each point read from its own cursor.

        One query reads the recent rows of the fleet; points whose cursor lies before its
        start (an asset that was silent, a gateway that comes back with its backlog) are
        read by asset, from their own cursors, so one silent asset costs one small query
        instead of making every round re-read everything since it went quiet. A point
        seen for the first time (a new fleet's points) is read back the same way,
        so the commissioning rows it sent before the shared window are not skipped; at
        most `FRESH_ASSETS_PER_ROUND` assets a round, so a new fleet's backfill is read
        over several short rounds rather than in one long one.
        """
        floor = (now - MAX_LOOKBACK).timestamp()
        late = max(LATE_WINDOW_S, 10.0 * self.settings.scoring_interval_s)
        cursors = {k: ks.cursor_s for k, ks in self.state.keys.items() if ks.cursor_s is not None}
        # The single process's first round (no cursor at all) reads everything there is in
        # one query; a leased worker reads its assets back a share a round instead.
        leased = not self.leases.all_mine
        start_s: float | None = None
        if cursors or leased:
            start_s = max(min(cursors.values(), default=-math.inf), floor,
                          now.timestamp() - late)
        start = None if start_s is None else datetime.fromtimestamp(start_s, UTC)
        shared = self._query(start=start, end=now, report=report)
        behind: dict[str, float] = {}
        for key, cursor in cursors.items():
            if start_s is not None and cursor < start_s:
                asset_id = split_key(key)[0]
                behind[asset_id] = min(behind.get(asset_id, math.inf), cursor)
        if start_s is not None:
            starts, ends = shared.key_bounds()
            keys = shared.keys[starts].tolist()
            fresh = {a for k in keys if k not in cursors and self._mine(a := split_key(k)[0])}
            if leased:
                # Held assets with no point read yet (a worker's first rounds).
                seen = {split_key(k)[0] for k in cursors}
                fresh |= self.leases.mine - self._read_back - seen
            ordered = sorted(fresh)
            for asset_id in ordered[:FRESH_ASSETS_PER_ROUND]:
                # From its first row, as the single process's first round reads: its
                # running hours and commissioning start there.
                behind[asset_id] = -math.inf
            self._read_back.update(ordered[:FRESH_ASSETS_PER_ROUND])
            later = set(ordered[FRESH_ASSETS_PER_ROUND:])
            if later and len(shared):
                # Read back in a later round: until then their new points take no rows,
                # so they are still new then.
                drop = [k not in cursors and split_key(k)[0] in later for k in keys]
                shared = shared.take(~np.repeat(np.asarray(drop, dtype=bool), ends - starts))
        batches = [shared]
        # Assets with cursors close together share a query: what one of them reads
        # twice is at most `late` seconds of another's rows.
        chunks: list[list[str]] = []
        for asset_id in sorted(behind, key=behind.__getitem__):
            first = behind[chunks[-1][0]] if chunks else 0.0
            if (not chunks or len(chunks[-1]) >= BEHIND_CHUNK
                    or (behind[asset_id] != first and behind[asset_id] - first > late)):
                chunks.append([])
            chunks[-1].append(asset_id)
        for chunk in chunks:
            # A point that was read before resumes at most MAX_LOOKBACK back; one never
            # read (-inf) from its first row.
            since = behind[chunk[0]]
            batches.append(self._query(
                asset_ids=chunk, end=start, report=report,
                start=None if since == -math.inf else datetime.fromtimestamp(
                    max(since, floor), UTC),
            ))
        batch = Batch.concat(batches)
        if not self.leases.all_mine and len(batch):
            batch = batch.take(np.isin(batch.asset_ids, list(self.leases.mine)))
        if not len(batch):
            return batch
        # Each (asset, point) resumes after its own cursor.
        unique, inverse = np.unique(batch.keys, return_inverse=True)
        cursor_of = np.array(
            [cursors.get(str(k), -np.inf) for k in unique.tolist()], dtype=np.float64
        )
        batch = batch.take(batch.ts_s > cursor_of[inverse])
        # Advance cursors to the newest row read (rows are sorted by key, then time).
        if len(batch):
            starts, ends = batch.key_bounds()
            for key, ts in zip(
                batch.keys[starts].tolist(), batch.ts_s[ends - 1].tolist(), strict=True
            ):
                self.state.key(key).cursor_s = ts
                self.state.dirty_keys.add(key)
        return batch

    def _query(
        self, *, start: datetime | None, end: datetime | None, report: RoundReport,
        asset_ids: list[str] | None = None,
    ) -> Batch:
        frame = self.store.query(asset_ids=asset_ids, start=start, end=end)
        # A stale row repeats a point's last good values while no new window came (a burst
        # sensor between bursts, a dead Modbus device): it is not a measurement, so it never
        # enters commissioning, scoring or the protection rules.
        stale = int(frame.stale.sum())
        report.rows_stale += stale
        if stale:
            frame = frame.take(~frame.stale)
        if not len(frame):
            return Batch.build(
                np.zeros(0, str), np.zeros(0, str), np.zeros(0), np.zeros((0, 0)), []
            )
        return Batch.build(
            frame.asset_ids, frame.points, frame.ts_s, frame.values, list(frame.feature_names)
        )

    def _commission(self, batch: Batch, now: datetime, report: RoundReport) -> Batch:
        """Route each key's first `commissioning_records` rows into its baseline."""
        need = self.settings.commissioning_records
        starts, ends = batch.key_bounds()
        run_keys = batch.keys[starts].tolist()
        have = np.array(
            [self.state.baseline.count(k) if self.state.key(k).commissioned_at_s is None
             else need for k in run_keys],
            dtype=np.int64,
        )
        rank = batch.rank_in_key()
        to_baseline = rank + np.repeat(have, ends - starts) < need
        report.rows_commissioning = int(to_baseline.sum())
        completed: list[str] = []
        if to_baseline.any():
            # Columns aligned to the baseline's once for the batch, not once per point.
            self.state.baseline.widen(batch.feature_names)
            aligned = align_columns(
                batch.values, batch.feature_names, self.state.baseline.feature_names
            )
            for key, lo, hi, had in zip(run_keys, starts.tolist(), ends.tolist(), have.tolist(),
                                        strict=True):
                if had >= need:
                    continue
                # Rows are sorted by time within a key: its first rows fill the baseline.
                take = min(hi - lo, need - had)
                ts = batch.ts_s[lo : lo + take]
                self.state.baseline.add_aligned(key, aligned[lo : lo + take])
                self.state.dirty_baselines.add(key)
                ks = self.state.key(key)
                if ks.baseline_first_s is None:
                    ks.baseline_first_s = float(ts.min())
                ks.baseline_last_s = float(ts.max())
                if self.state.baseline.count(key) >= need:
                    completed.append(key)
        for key in completed:
            self.state.key(key).commissioned_at_s = now.timestamp()
            self.fit_queue.add(key, now.timestamp())
        if completed:
            self.state.baseline.version = self.state_store.bump_version()
            report.commissioned = completed
            log.info("commissioned %d points (baseline v%d): %s", len(completed),
                     self.state.baseline.version, ", ".join(completed[:10]))
        commissioned = np.repeat(
            np.array([self.state.key(k).commissioned_at_s is not None for k in run_keys],
                     dtype=bool),
            ends - starts,
        )
        return batch.take(~to_baseline & commissioned)

    def _queue_commissioned(self, keys: list[str], now: datetime) -> None:
        """Queue loaded points (a restart, a takeover) that completed commissioning."""
        for key in keys:
            ks = self.state.keys.get(key)
            if ks is not None and ks.commissioned_at_s is not None:
                self.fit_queue.add(key, now.timestamp())

    def _fit_ready(self, now: datetime, report: RoundReport | None) -> None:
        """Fit the oldest-ready points the round's budget allows; the rest wait in order."""
        if len(self.fit_queue):
            self.fit_queue.budget_s = self._fit_budget_s()
        keys = self.fit_queue.take()
        fit_s = 0.0
        if keys:
            started = time.perf_counter()
            self._refit(now, report, keys=keys)
            fit_s = time.perf_counter() - started
        waiting = len(self.fit_queue)
        oldest = self.fit_queue.oldest_ready_s()
        oldest_wait = None if oldest is None else max(0.0, now.timestamp() - oldest)
        if report is not None:
            report.fit_waiting, report.fit_oldest_wait_s = waiting, oldest_wait
        metrics.scoring_fit_progress(
            fitted=len(keys), seconds=fit_s, waiting=waiting, oldest_wait_s=oldest_wait,
            budget_s=self.fit_queue.budget_s,
        )
        if keys:
            log.info(
                "fitted %d points in %.2f s (budget %.2f s, %.2f ms a point); %d waiting%s",
                len(keys), fit_s, self.fit_queue.budget_s,
                1e3 * self.fit_queue.cost_per_point_s, waiting,
                "" if oldest_wait is None else f", the oldest ready {oldest_wait:.0f} s ago",
            )

    def _fit_budget_s(self) -> float:
        """`scoring_fit_budget_s`, or a share of the record interval T (of the interval)."""
        if self.settings.scoring_fit_budget_s is not None:
            return self.settings.scoring_fit_budget_s
        floor = FIT_BUDGET_SHARE_OF_INTERVAL * self.settings.scoring_interval_s
        if self.models.fitted:
            spacing: float | None = self.models.window_spacing_s
        else:  # T from the points waiting, before the detector measured it
            sample = sorted(self.fit_queue.keys)[:SPACING_SAMPLE]
            spacing = self._window_spacing_s([k for k in sample if k in self.state.keys])
        return max(floor, FIT_BUDGET_SHARE_OF_T * (spacing or 0.0))

    def _refit(
        self, now: datetime, report: RoundReport | None = None, *,
        assets: set[str] | None = None, keys: list[str] | None = None,
    ) -> None:
        """Fit the detector on the commissioned points of the assets of `keys` (or `assets`).

        An asset is the unit of a refit (its verdicts are replayed on all its points after
        it); an asset whose rows fail is left out (and shown). A full fit (the fleet statistics,
        with every point fitted so far) when nothing is fitted yet, the features changed,
        or the fitted points grew `FULL_FIT_GROWTH`-fold since the last full fit and all
        of them fit in one round's budget; otherwise only these points are (re)fitted
        against the fleet statistics of the last full fit, so commissioning one machine
        does not refit fifty thousand, and no round fits more than its budget allows
        (a large fleet's statistics are those of the largest full fit a round affords).
        """
        started = time.perf_counter()
        if keys is not None:
            assets = {split_key(k)[0] for k in keys}
        assert assets is not None
        keys = [k for k, ks in self.state.keys.items()
                if ks.commissioned_at_s is not None and split_key(k)[0] in assets]
        self.fit_queue.discard(keys)
        new = {k for k in keys if self.state.baseline.count(k)}
        if not new:
            return
        every = sorted(self._fitted | new)
        full = (
            not self.models.fitted
            or not self.models.can_refit(self.state.baseline.feature_names)
            or (len(every) >= FULL_FIT_GROWTH * max(self._full_fit_keys, 1)
                and len(every) <= self.fit_queue.capacity())
        )
        replay: set[str] | None
        if full:
            self._unfit = {}
            self._fit_isolated(every, now, report, self._fit_keys)
            self._full_fit_keys = len(every)
            fitted, replay = every, None
        else:
            fitted = sorted(new)
            replay = {split_key(k)[0] for k in fitted}
            for asset_id in replay:
                self._unfit.pop(asset_id, None)
            self._fit_isolated(fitted, now, report, self._refit_keys)
        self._fitted.update(fitted)
        # Baseline statistics for the evidence, computed now rather than in a round.
        self.state.baseline.precompute(fitted)
        if report is not None:
            report.refitted += len(fitted)
            report.full_fit = report.full_fit or full
        # A refit starts from the commissioning rows again: replay engineers' verdicts.
        for item in self.state.verdict_rows:
            asset_id = split_key(item["key"])[0]
            if asset_id in self._unfit or (replay is not None and asset_id not in replay):
                continue
            rows = np.asarray(item["rows"], dtype=np.float64).reshape(len(item["rows"]), -1)
            try:
                self.models.apply_verdict(item["key"], item["verdict"], rows, item["names"])
            except Exception as err:
                self._failed(asset_id, "verdict", err, now, report)
        elapsed = time.perf_counter() - started
        self.fit_queue.measured(len(fitted), elapsed)
        if report is not None:
            report.fit_s += elapsed

    def _fit_isolated(
        self, keys: list[str], now: datetime, report: RoundReport | None,
        fit: Callable[[list[str]], None],
    ) -> None:
        """`fit(keys)`; if it raises, find the assets whose baselines fail and fit the rest."""
        try:
            fit(keys)
        except Exception as fleet_err:
            by_asset: dict[str, list[str]] = {}
            for key in keys:
                by_asset.setdefault(split_key(key)[0], []).append(key)
            failed: set[str] = set()
            for asset_id, asset_keys in by_asset.items():
                try:
                    fit(asset_keys)
                except Exception as err:
                    failed.add(asset_id)
                    self._unfit[asset_id] = err
                    self._failed(asset_id, "fit", err, now, report)
            fit_keys = [k for k in keys if split_key(k)[0] not in failed]
            if not failed:
                raise  # no single asset to blame: the round fails as a whole
            if fit_keys:
                try:
                    fit(fit_keys)
                except Exception:
                    raise fleet_err from None

    def _fit_keys(self, keys: list[str]) -> None:
        x, ids = self.state.baseline.stacked(keys)
        self.models.fit(x, ids, self.state.baseline.feature_names,
                        window_spacing_s=self._window_spacing_s(keys))

    def _refit_keys(self, keys: list[str]) -> None:
        x, ids = self.state.baseline.stacked(keys)
        self.models.refit(x, ids, self.state.baseline.feature_names)

    def _window_spacing_s(self, keys: list[str]) -> float | None:
        """The fleet's median window spacing in capture time over its commissioning rows.

        A point that reports every 5 s gets 12 times as many chances to alarm per year as one
        that reports every minute; the detector's per-window false-alarm budget follows it.
        """
        spacings = [
            s for k in keys
            if (s := self.state.key(k).window_spacing_s(self.state.baseline.count(k)))
        ]
        return float(np.median(spacings)) if spacings else None

    def _read_back_commissioning(self) -> None:
        """Baseline rows of loaded points still commissioning, from the telemetry store.

        A baseline is written to the database once complete; the rows a point had
        gathered before a restart are its rows between its first and last baseline times.
        """
        pending = dict(self.state_store.commissioning_reads)
        self.state_store.commissioning_reads.clear()
        if not pending:
            return
        by_asset: dict[str, list[str]] = {}
        for key in pending:
            by_asset.setdefault(split_key(key)[0], []).append(key)
        assets = sorted(by_asset, key=lambda a: min(pending[k][0] for k in by_asset[a]))
        scratch = RoundReport(at=self.clock())
        for i in range(0, len(assets), BEHIND_CHUNK):
            chunk = assets[i : i + BEHIND_CHUNK]
            spans = [pending[k] for a in chunk for k in by_asset[a]]
            batch = self._query(
                asset_ids=chunk,
                start=datetime.fromtimestamp(min(lo for lo, _ in spans), UTC),
                end=datetime.fromtimestamp(max(hi for _, hi in spans) + 1e-3, UTC),
                report=scratch,
            )
            starts, ends = batch.key_bounds()
            for key, lo, hi in zip(batch.keys[starts].tolist(), starts.tolist(), ends.tolist(),
                                   strict=True):
                span = pending.get(key)
                if span is None:
                    continue
                ts = batch.ts_s[lo:hi]
                rows = np.flatnonzero((ts >= span[0]) & (ts <= span[1])) + lo
                if len(rows):
                    self.state.baseline.add_rows(key, batch.feature_names, batch.values[rows])

    # -- histories ---------------------------------------------------------------------------
    def _warm_raised(self, keys: list[str]) -> None:
        """Read back the feature histories of loaded points that are raised (RUL needs them)."""
        for key in keys:
            ks = self.state.keys[key]
            if ks.raised and not ks.warm and ks.cursor_s is not None:
                self._warm(key, ks, ks.cursor_s + 1e-3)

    def _warm(self, key: str, ks: KeyState, before_s: float) -> None:
        """Complete a cold point's history from the telemetry store, up to `before_s`.

        The database keeps no histories; the store has every scored row. A quiet point
        needs only the lead-in before its newest row, a raised one everything since its
        history began (`trend_from_s`, saved every round).
        """
        ks.warm = True
        first = float(ks.hi_t_s[0]) if len(ks.hi_t_s) else before_s
        longest = max((len(v) for v in ks.trend.values()), default=0)
        if len(ks.hi_t_s) and longest < len(ks.hi_t_s):
            return  # the history in memory already reaches back past the lead-in
        saved = self.state_store.trend_from(key)
        since = first - RUL_LEAD_IN_S
        if ks.raised and saved is not None:
            since = min(since, saved)
        if ks.baseline_last_s is not None:
            since = max(since, ks.baseline_last_s + 1e-6)
        if not since < first:
            return
        asset_id, point = split_key(key)
        try:
            frame = self.store.query(
                asset_ids=[asset_id], point=point,
                start=datetime.fromtimestamp(since, UTC), end=datetime.fromtimestamp(first, UTC),
            )
        except Exception as err:
            log.warning("history of %s could not be read back: %s", key, err)
            return
        frame = frame.take(~frame.stale)
        frame = frame.take(np.arange(max(0, len(frame) - HI_HISTORY), len(frame)))
        if not len(frame):
            return
        n_old = len(frame)
        n_new = len(ks.hi_t_s)
        ks.hi_t_s = _append(frame.ts_s, ks.hi_t_s, HI_HISTORY)
        ks.hi = _append(frame.column(HEALTH_INDICATOR), ks.hi, HI_HISTORY)
        trend: dict[str, list[float]] = {}
        names = {n for n in frame.feature_names if is_trended(n)} | set(ks.trend)
        for name in names:
            old = frame.column(name)
            if name not in ks.trend and not np.isfinite(old).any():
                continue
            new = ks.trend.get(name, [math.nan] * n_new)
            trend[name] = [*old.tolist(), *new][-len(ks.hi_t_s):]
        if not ks.raised:
            # As the quiet point kept it: the lead-in before its newest row only.
            keep = _trend_rows(ks.hi_t_s, raised=False)
            trend = {n: v[-keep:] for n, v in trend.items()}
        ks.trend = trend
        log.debug("read back %d rows of history for %s", n_old, key)

    def _failed(
        self,
        asset_id: str,
        stage: ScoringStage,
        err: BaseException,
        now: datetime,
        report: RoundReport | None,
    ) -> None:
        """A model call for one asset raised: skip its round, count and show it."""
        self.health.failed(asset_id, stage, err, now)
        if report is not None:
            report.failed_assets.add(asset_id)

    def _anomaly(
        self, batch: Batch
    ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Aligned features, anomaly ratio and over-threshold flag of each row."""
        x = align_columns(batch.values, batch.feature_names, self.state.baseline.feature_names)
        scores, over = self.models.score(batch.values, batch.feature_names, batch.keys)
        return x, scores, over

    def _score_isolated(
        self, batch: Batch, now: datetime, report: RoundReport
    ) -> tuple[Batch, tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]]:
        """Score the batch in one call; if that raises, drop the assets whose rows do."""
        if self._unfit:
            unfit = np.isin(batch.asset_ids, list(self._unfit))
            for asset_id in np.unique(batch.asset_ids[unfit]).tolist():
                self._failed(asset_id, "fit", self._unfit[asset_id], now, report)
            batch = batch.take(~unfit)
        if not len(batch):
            return batch, self._nothing()
        try:
            return batch, self._anomaly(batch)
        except Exception:
            keep = np.ones(len(batch), dtype=bool)
            assets, inverse = np.unique(batch.asset_ids, return_inverse=True)
            for g, asset_id in enumerate(assets.tolist()):
                rows = inverse == g
                try:
                    self._anomaly(batch.take(rows))
                except Exception as err:
                    keep &= ~rows
                    self._failed(asset_id, "anomaly", err, now, report)
            if keep.all():
                raise  # no single asset to blame: the round fails as a whole
            batch = batch.take(keep)
            return batch, self._anomaly(batch) if len(batch) else self._nothing()

    def _nothing(self) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        width = len(self.state.baseline.feature_names)
        return np.zeros((0, width)), np.zeros(0), np.zeros(0, dtype=bool)

    def _score(self, batch: Batch, now: datetime, report: RoundReport) -> dict[str, KeyView]:
        """Score all rows in one call, update persistence per key; return per-key views.

        Views carry histories and commissioning rows only for assets that need assessing
        (a raised point, an open condition, an alert waiting for its waveform): copying
        them for every quiet point of the fleet would cost more than scoring it.
        """
        if not self.models.fitted:
            return {}
        batch, (x, scores, over) = self._score_isolated(batch, now, report)
        if not len(batch):
            return {}
        report.rows_scored = len(batch)
        report.scored_assets.update(np.unique(batch.asset_ids).tolist())
        # The health indicator for RUL is the ISO velocity: its failure level is known.
        health = batch.column(HEALTH_INDICATOR)
        ts_all = batch.ts_s.tolist()
        trended = {n: batch.column(n).tolist() for n in batch.feature_names if is_trended(n)}
        report.over_threshold = int(over.sum())

        starts, ends = batch.key_bounds()
        unique = batch.keys[starts].tolist()
        group = np.repeat(np.arange(len(unique), dtype=np.int64), ends - starts)
        asset_of = batch.asset_ids[starts].tolist()
        carry = [np.asarray(self.state.key(k).flags_tail, dtype=bool) for k in unique]
        rolled = rolling_counts(group, over, carry, self.rule.n)
        counts = rolled.last_count.tolist()
        raised_assets: set[str] = set()
        for g, key in enumerate(unique):
            ks = self.state.key(key)
            self.state.dirty_keys.add(key)
            ks.flags_tail = rolled.carry[g].tolist()
            count = counts[g]
            lo, hi = int(starts[g]), int(ends[g])
            if not ks.warm and (ks.raised or count >= self.rule.k):
                self._warm(key, ks, ts_all[lo])
            if count >= self.rule.k and not ks.raised:
                ks.raised = True
                # Degradation started about when the first of the persisting windows did.
                ks.onset_s = ts_all[max(lo, hi - self.rule.n)]
            elif count <= self.rule.clear_at:
                ks.raised = False
                ks.onset_s = None
            ks.hi_t_s = _append(ks.hi_t_s, batch.ts_s[lo:hi], HI_HISTORY)
            ks.hi = _append(ks.hi, health[lo:hi], HI_HISTORY)
            if not ks.raised:
                # A quiet point's trend is its lead-in; twice that much health indicator is
                # context enough (and 2 000 values for every point of a fleet is not).
                cut = int(np.searchsorted(ks.hi_t_s, ks.hi_t_s[-1] - QUIET_HI_S))
                if cut:
                    ks.hi_t_s, ks.hi = ks.hi_t_s[cut:].copy(), ks.hi[cut:].copy()
            # A quiet point keeps only the lead-in a RUL fit starts from: little state.
            _extend_trend(ks.trend, trended, slice(lo, hi), _trend_rows(ks.hi_t_s, ks.raised))
            if ks.raised:
                raised_assets.add(asset_of[g])
        waiting = self.state.waiting_assets()
        full_of = [a in raised_assets or bool(self.state.open_modes.get(a))
                   or a in waiting for a in asset_of]
        return self._views(batch, x, scores, counts, full_of)

    def _views(
        self, batch: Batch, x: FloatArray, scores: FloatArray, counts: list[int],
        full_of: list[bool],
    ) -> dict[str, KeyView]:
        """Each key's view at its newest row of `batch`; values and histories where `full_of`."""
        names = self.state.baseline.feature_names
        starts, ends = batch.key_bounds()
        unique = batch.keys[starts].tolist()
        views: dict[str, KeyView] = {}
        empty = np.zeros(0)
        last_rows = (ends - 1).tolist()
        # Robust z-scores (evidence) only for the newest row of the points assessed.
        z_rows = np.asarray([i for i, f in zip(last_rows, full_of, strict=True) if f],
                            dtype=np.intp)
        z_of: dict[int, list[float]] = {}
        if len(z_rows):
            z_of = dict(zip(z_rows.tolist(), self.models.feature_z(
                x[z_rows], batch.keys[z_rows], self.state.baseline).tolist(), strict=True))
        for g, key in enumerate(unique):
            ks = self.state.keys[key]
            i = last_rows[g]
            full = full_of[g]
            views[key] = KeyView(
                key=key,
                count=counts[g],
                raised=ks.raised,
                score=float(scores[i]),
                latest=dict(zip(names, x[i].tolist(), strict=True)) if full else {},
                z=dict(zip(names, z_of[i], strict=True)) if full else {},
                baseline_median=self.state.baseline.median(key) if full else {},
                hi_t_s=ks.hi_t_s if full else empty,
                hi=ks.hi if full else empty,
                onset_s=ks.onset_s,
                trend={n: np.asarray(v) for n, v in ks.trend.items()} if full else {},
                commissioning=self.state.baseline.columns(key, list(ks.trend)) if full else {},
            )
        return views

    def _resume_held(self, assets: set[str]) -> None:
        """Views of taken-over assets whose new alert waits for its waveform.

        The worker before decided such an alert every round from its last views, new rows
        or not; this one rebuilds them from the raised points' newest `n` rows (re-scored,
        so the score and persistence count are the ones it saw) and the wait ends as it
        would have there: at the waveform, or at SNAPSHOT_WAIT.
        """
        held = assets & self.state.waiting_assets()
        if not held or not self.models.fitted:
            return
        n = self.rule.n
        spans: dict[str, dict[str, tuple[float, float]]] = {}
        for key, ks in self.state.keys.items():
            asset_id = split_key(key)[0]
            if asset_id in held and ks.raised and ks.cursor_s is not None and len(ks.hi_t_s):
                first = float(ks.hi_t_s[max(0, len(ks.hi_t_s) - n)])
                spans.setdefault(asset_id, {})[key] = (first, ks.cursor_s)
        scratch = RoundReport(at=self.clock())
        for asset_id, of_asset in sorted(spans.items()):
            try:
                batch = self._query(
                    asset_ids=[asset_id],
                    start=datetime.fromtimestamp(min(lo for lo, _ in of_asset.values()), UTC),
                    end=datetime.fromtimestamp(max(hi for _, hi in of_asset.values()) + 1e-3,
                                               UTC),
                    report=scratch,
                )
                span = [of_asset.get(str(k), (math.inf, -math.inf)) for k in batch.keys]
                keep = np.array([lo <= t <= hi for (lo, hi), t in
                                 zip(span, batch.ts_s.tolist(), strict=True)], dtype=bool)
                batch = batch.take(keep)
                if not len(batch):
                    continue
                starts, ends = batch.key_bounds()
                rank_from_end = np.repeat(ends, ends - starts) - np.arange(len(batch))
                batch = batch.take(rank_from_end <= n)
                starts, ends = batch.key_bounds()
                group = np.repeat(np.arange(len(starts), dtype=np.int64), ends - starts)
                x, scores, over = self._anomaly(batch)
                rolled = rolling_counts(group, over, [np.zeros(0, bool)] * len(starts), n)
                views = self._views(batch, x, scores, rolled.last_count.tolist(),
                                    [True] * len(starts))
            except Exception as err:
                # The alert is then decided with the asset's next window instead.
                log.warning("held alert of %s not resumed after the takeover: %s", asset_id,
                            err)
                continue
            self._last_views.update(views)

    # -- acting on the database ------------------------------------------------------------
    def _act(
        self, session: Session, views: dict[str, KeyView], now: datetime, report: RoundReport
    ) -> None:
        by_asset: dict[str, list[KeyView]] = {}
        for key, view in views.items():
            by_asset.setdefault(split_key(key)[0], []).append(view)
        for asset_id in self.state.waiting_assets() & by_asset.keys():
            if not any(v.raised for v in by_asset[asset_id]):
                # Settled before its held alert opened: that alert will not open, and the
                # next one waits for its waveform afresh.
                self.state.stop_waiting(asset_id)
        # Only assets with something to decide: a raised point, or an open condition that
        # may clear. A quiet asset without one has nothing to open, update or clear.
        by_asset = {
            a: vs for a, vs in by_asset.items()
            if self.state.open_modes.get(a) or any(v.raised for v in vs)
        }
        if not by_asset:
            return
        assets = {
            a.id: a for a in session.scalars(select(Asset).where(Asset.id.in_(list(by_asset))))
        }
        physics: dict[str, AssetPhysics | None] = {}
        for aid, asset in assets.items():
            try:
                physics[aid] = asset.physics
            except Exception as err:
                self._failed(aid, "physics", err, now, report)
        assessments: dict[str, Assessment] = {}
        for aid, views_of in by_asset.items():
            if aid not in physics or not any(v.raised for v in views_of):
                continue
            # One asset per call: diagnosis or RUL raising for one machine skips only it.
            try:
                assessments.update(
                    self.models.assess([AssetView(asset_id=aid, keys=views_of)], physics)
                )
            except Exception as err:
                self._failed(aid, _stage_of(err), err, now, report)
        for asset_id, views_of in by_asset.items():
            if asset_id not in assets:
                self.health.forget(asset_id)
                continue
            if asset_id in report.failed_assets:
                continue
            open_modes = self.state.open_modes.setdefault(asset_id, [])
            assessment = assessments.get(asset_id)
            if assessment is None:
                if not any(v.raised for v in views_of) and all(
                    v.count <= self.rule.clear_at for v in views_of
                ):
                    for mode in list(open_modes):
                        cleared = clear_condition(
                            session, asset_id=asset_id, failure_mode=mode, now=now
                        )
                        if cleared is None or cleared.state not in OPEN_ALERT_STATES:
                            open_modes.remove(mode)
                            self.state.touch_asset(asset_id)
                            report.cleared.append((asset_id, mode))
                continue
            if not open_modes and assessment.needs_snapshot and self._hold_for_snapshot(
                asset_id, assessment.lead.point, now, report
            ):
                continue
            self.state.stop_waiting(asset_id)
            if assessment.needs_snapshot or assessment.wants_newer_snapshot:
                self._ask_for_snapshot(asset_id, assessment.lead.point, now, report)
            diagnosed = assessment.failure_mode != ANOMALY_MODE
            if open_modes:
                # One alert per episode: its failure mode stays what it was opened as, and
                # a later diagnosis shows in the evidence (and raises severity).
                assessment.failure_mode = open_modes[0]
            try:
                severity = decide_severity(
                    diagnosed=diagnosed,
                    confidence=assessment.confidence,
                    iso_zone=assessment.iso_zone,
                    rul_low_h=None if assessment.rul_hours is None else assessment.rul_hours[0],
                    model_severity=assessment.severity,
                )
                evidence = build_evidence(assessment, self.rule, self.models)
            except Exception as err:
                self._failed(asset_id, "evidence", err, now, report)
                continue
            alert = upsert_alert(
                session,
                asset_id=asset_id,
                failure_mode=assessment.failure_mode,
                severity=severity,
                score=assessment.score,
                evidence=evidence,
                model=self.models.name,
                model_version=self.models.version_for(self.state.baseline.version),
                rul_hours=assessment.rul_hours,
                now=now,
                confidence=assessment.confidence,
                iso_zone=assessment.iso_zone,
            )
            report.alerts_upserted.append(alert.id)
            if assessment.failure_mode not in open_modes:
                open_modes.append(assessment.failure_mode)
                self.state.touch_asset(asset_id)
            work_order = open_from_alert(
                session, alert, now=now, policy=self.policy, catalogue=self.catalogue
            )
            if work_order is not None:
                report.work_orders.append(work_order.id)

    def _protect(self, session: Session, batch: Batch, now: datetime, report: RoundReport) -> None:
        """The protection rules for assets with new rows and those whose rule waited."""

        def defer(asset_id: str) -> bool:
            # An alert held for its waveform opens within SNAPSHOT_WAIT, and the rule then
            # lifts it: a few seconds for one alert instead of two.
            waiting = self.state.waiting_since(asset_id)
            return (
                waiting is not None
                and asset_id not in report.failed_assets
                and now.timestamp() - waiting < SNAPSHOT_WAIT.total_seconds()
            )

        assets = set(np.unique(batch.asset_ids).tolist()) | self.state.waiting_assets()
        outcome = self.protection.act(session, assets, now, defer=defer)
        for asset_id, err in outcome.failed.items():
            self._failed(asset_id, "protection", err, now, report)
        report.alerts_upserted += outcome.opened_or_updated
        report.protection_alerts += outcome.alerts
        report.work_orders += outcome.work_orders
        report.cleared += outcome.cleared

    def _hold_for_snapshot(
        self, asset_id: str, point: str, now: datetime, report: RoundReport
    ) -> bool:
        """Ask the gateway for a waveform; True while the new alert should wait for it.

        A diagnosed alert ("outer race") is worth a few seconds' delay over an
        unclassified one; without a command channel, or once SNAPSHOT_WAIT has passed,
        the alert opens with what is known.
        """
        if not self._ask_for_snapshot(asset_id, point, now, report):
            return False
        t = now.timestamp()
        since = self.state.wait_for_snapshot(asset_id, point, t)
        return t - since < SNAPSHOT_WAIT.total_seconds()

    def _ask_for_snapshot(
        self, asset_id: str, point: str, now: datetime, report: RoundReport
    ) -> bool:
        """Send a snapshot command, at most once per SNAPSHOT_RETRY; False if none can be.

        The request is saved with the round, so a worker that takes the asset over does
        not ask again while it is fresh.
        """
        if self.request_snapshot is None:
            return False
        t = now.timestamp()
        request = self.state.snapshot_requests.get(asset_id)
        last = None if request is None else request.asked_at_s
        if last is not None and t - last < SNAPSHOT_RETRY.total_seconds():
            return True
        self.state.asked_for_snapshot(asset_id, point, t)
        try:
            command_id = self.request_snapshot(asset_id, point, "scoring")
        except Exception as err:
            # Diagnosis is better with a waveform, but alerts must not wait on a broken channel.
            log.warning("snapshot request for %s failed: %s", asset_id, err)
            return False
        self.state.asked_for_snapshot(asset_id, point, t, command_id)
        report.snapshots_requested.append(asset_id)
        return True

    def _apply_verdicts(
        self, session: Session, now: datetime, report: RoundReport
    ) -> tuple[int, int]:
        """Feed new verdicts back to the anomaly detector, once each, with the alarmed rows.

        A verdict covers what the engineer saw: the alert's rows up to the verdict, so a
        later departure beyond them alarms again. The latest verdict on an alert is the one
        that counts: a second one replaces the first (both stay in the verdict history) and
        the detector is refitted with it, not updated on top of it. Verdicts on protection
        alerts teach the detector nothing. Returns (verdicts seen, verdicts the detector took).
        """
        fresh = session.scalars(
            select(Verdict).where(Verdict.id > self._verdict_mark).order_by(Verdict.id)
        ).all()
        applied = 0
        refit: set[str] = set()
        seen = 0
        for verdict in fresh:
            self._verdict_mark = max(self._verdict_mark, verdict.id)
            alert = session.get(Alert, verdict.alert_id) if verdict.alert_id is not None else None
            if alert is not None:
                # Another worker's asset, or one this asset already took (after a takeover).
                if not self._mine(alert.asset_id) or (
                    verdict.id <= self.state_store.verdict_seen(alert.asset_id)
                ):
                    continue
                self.state_store.note_verdict(alert.asset_id, verdict.id)
                self.state.touch_asset(alert.asset_id)
            seen += 1
            point = alert.evidence.get("point") if alert is not None else None
            if alert is None or not point or not self.models.fitted:
                continue
            if alert.failure_mode in PROTECTION_MODES:
                continue
            frame = self.store.query(
                asset_ids=[alert.asset_id],
                point=str(point),
                start=alert.opened_at - timedelta(minutes=10),
                end=min(alert.last_seen_at, verdict.at) + timedelta(seconds=1),
            )
            frame = frame.take(~frame.stale)
            # The newest rows up to the verdict: what the engineer looked at.
            frame = frame.take(np.arange(max(0, len(frame) - VERDICT_ROWS), len(frame)))
            key = point_key(alert.asset_id, str(point))
            names = list(frame.feature_names)
            entry = {"key": key, "verdict": verdict.verdict, "names": names,
                     "rows": frame.values.tolist(), "alert_id": alert.id,
                     "at_s": verdict.at.timestamp()}
            replaced = [v for v in self.state.verdict_rows if v.get("alert_id") == alert.id]
            if replaced:
                # The engineer changed their mind: the new verdict replaces the old one and
                # the detector is refitted from its baseline with the verdicts that now hold.
                self.state.verdict_rows = [
                    v for v in self.state.verdict_rows if v.get("alert_id") != alert.id
                ]
                if verdict.verdict in ("false_alarm", "confirmed") and len(frame):
                    self.state.verdict_rows.append(entry)
                    applied += 1
                refit.add(alert.asset_id)
            elif len(frame):
                try:
                    taken = self.models.apply_verdict(key, verdict.verdict, frame.values, names)
                except Exception as err:
                    self._failed(alert.asset_id, "verdict", err, now, report)
                    continue
                if not taken:
                    continue
                applied += 1
                self.state.verdict_rows.append(entry)
            else:
                continue
            if verdict.verdict == "false_alarm":
                # Judged normal: start the persistence count afresh under the new threshold,
                # or the windows already counted would reopen the alert at once.
                ks = self.state.key(key)
                ks.flags_tail, ks.raised, ks.onset_s = [], False, None
                self.state.dirty_keys.add(key)
                modes = self.state.open_modes.get(alert.asset_id, [])
                if alert.failure_mode in modes:
                    modes.remove(alert.failure_mode)
        if refit:
            self._refit(now, report, assets=refit)
        return seen, applied

    def _expire_verdicts(self, session: Session, now: datetime, report: RoundReport) -> None:
        """Verdicts end with the next maintenance: work done on the machine after them."""
        if not self.state.verdict_rows:
            return
        assets = sorted({split_key(str(v["key"]))[0] for v in self.state.verdict_rows})
        serviced = func.max(func.coalesce(WorkOrder.done_at, WorkOrder.closed_at))
        done = {
            asset_id: at.timestamp()
            for asset_id, at in session.execute(
                select(WorkOrder.asset_id, serviced)
                .where(WorkOrder.asset_id.in_(assets), WorkOrder.cancelled_at.is_(None))
                .group_by(WorkOrder.asset_id)
            ).all()
            if at is not None
        }
        keep = [
            v for v in self.state.verdict_rows
            if float(v.get("at_s", -math.inf))
            >= done.get(split_key(str(v["key"]))[0], -math.inf)
        ]
        expired = len(self.state.verdict_rows) - len(keep)
        if expired:
            kept = {id(v) for v in keep}
            gone = {split_key(str(v["key"]))[0] for v in self.state.verdict_rows
                    if id(v) not in kept}
            self.state.verdict_rows = keep
            report.verdicts_expired = expired
            for asset_id in gone:
                self.state.touch_asset(asset_id)
            log.info("%d verdicts expired after maintenance; detector refitted without them",
                     expired)
            self._refit(now, report, assets=gone)
