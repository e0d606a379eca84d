"""Ingestion in processes of its own: what `cloud serve` runs beside the API and scoring.

`IngestProcesses(settings, n)` starts n worker processes (multiprocessing, spawn). Each
opens the database and the telemetry store itself and runs one `IngestionWorker`: with
n > 1 they share the stream through an MQTT 5 shared subscription, each under a stable
client id (`<mqtt_client_id>-<i>`), so a restarted worker resumes its broker session.
Validation and storage then never wait for scoring's GIL, nor scoring for theirs.

The parent asks the workers for their counters when `stats` is read and every
`report_s`; it restarts a worker that died (backoff doubling to `restart_backoff_max_s`)
and counts it in `worker_restarts`.
`stop()` asks each worker to finish and acknowledge what it holds, then waits; one that
does not end is terminated. A worker whose parent is gone stops by itself.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, cast

from cloud.ingest._stats import IngestStats, combine_stats
from cloud.metrics._series import IngestCounts, add_ingest_counts

if TYPE_CHECKING:
    from cloud.settings import CloudSettings

__all__ = ["IngestProcesses", "WorkerTarget", "serve_worker", "worker_signals"]

log = logging.getLogger(__name__)

DEFAULT_SHARED_GROUP = "ironwatch"
_STOP = "stop"
_ASK = "stats"

WorkerTarget = Callable[["CloudSettings", str, "Connection[object, object]", int], None]
"""The body of one worker process: (settings, client_id, pipe to the parent, log level).
A module-level function (spawn pickles it by name); `cloud.app.run_ingest_process`."""


def serve_worker(
    conn: Connection[object, object], stats: Callable[[], object], stop: threading.Event
) -> None:
    """A worker process's side of the pipe: answer the parent's questions until it says stop.

    Returns when the parent says stop, is gone, or `stop` is set (SIGTERM).
    """
    try:
        while not stop.is_set():
            if conn.poll(0.2):
                if conn.recv() == _STOP:
                    return
                conn.send(stats())
    except (EOFError, OSError):
        return  # the parent is gone: stop, finishing what was received


def worker_signals() -> threading.Event:
    """Ctrl-C reaches the parent (which stops the workers); SIGTERM sets the event."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


@dataclass
class _Slot:
    """One worker position: its client id, current process and what it last reported."""

    client_id: str
    process: BaseProcess | None = None
    conn: Connection[object, object] | None = None
    stats: IngestStats = field(default_factory=IngestStats)
    dropped: int = 0
    counts: IngestCounts | None = None  # its metrics series last reported
    pending: int = 0  # questions it has not answered yet
    # Counters of earlier incarnations of this slot (a restart starts from zero).
    before: list[IngestStats] = field(default_factory=list)
    dropped_before: int = 0
    restart_at: float | None = None
    backoff_s: float = 0.0
    started_at: float = 0.0


class IngestProcesses:
    """N ingestion worker processes, supervised: started, restarted, stopped together."""

    def __init__(self, settings: CloudSettings, workers: int, target: WorkerTarget, *,
                 report_s: float = 0.5,
                 restart_backoff_max_s: float = 30.0, stop_timeout_s: float = 15.0) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        group = settings.mqtt_shared_group
        if workers > 1 and group is None:
            group = DEFAULT_SHARED_GROUP
        self.settings = settings.model_copy(update={"mqtt_shared_group": group})
        base = settings.mqtt_client_id
        # One worker keeps the service's own client id: the same broker session as before.
        ids = [base] if workers == 1 else [f"{base}-{i}" for i in range(workers)]
        self._slots = [_Slot(client_id) for client_id in ids]
        self.report_s = report_s
        self._target = target
        self.restart_backoff_max_s = restart_backoff_max_s
        self.stop_timeout_s = stop_timeout_s
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    @property
    def pids(self) -> list[int | None]:
        """The worker processes' ids (None while one is being restarted)."""
        with self._lock:
            return [s.process.pid if s.process is not None else None for s in self._slots]

    @property
    def stats(self) -> IngestStats:
        """Every worker's counters summed, earlier incarnations included."""
        with self._lock:
            self._drain()
            parts = [p for s in self._slots for p in (*s.before, s.stats)]
            combined = combine_stats(parts, restarts=self.restarts)
            live = [s.stats for s in self._slots]
        return IngestStats(**{**combined.__dict__, "workers": len(self._slots),
                              "connected": all(p.connected for p in live)})

    @property
    def worker_stats(self) -> list[IngestStats]:
        """Each worker's own counters (its current incarnation)."""
        with self._lock:
            self._drain()
            return [s.stats for s in self._slots]

    @property
    def dead_letters_dropped(self) -> int:
        with self._lock:
            return sum(s.dropped + s.dropped_before for s in self._slots)

    @property
    def connected(self) -> bool:
        return self.stats.connected

    def start(self) -> None:
        with self._lock:
            for slot in self._slots:
                self._spawn(slot)
        self._monitor = threading.Thread(target=self._watch, name="ingest-supervisor",
                                         daemon=True)
        self._monitor.start()

    def stop(self) -> None:
        """Ask every worker to stop (each finishes and acknowledges what it holds), then wait."""
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join(5.0)
            self._monitor = None
        with self._lock:
            for slot in self._slots:
                if slot.conn is not None:
                    with contextlib.suppress(OSError):
                        slot.conn.send(_STOP)
            deadline = time.monotonic() + self.stop_timeout_s
            for slot in self._slots:
                proc = slot.process
                if proc is None:
                    continue
                proc.join(max(0.1, deadline - time.monotonic()))
                if proc.is_alive():
                    log.warning("ingestion worker %s did not stop; terminating it",
                                slot.client_id)
                    proc.terminate()
                    proc.join(5.0)
                    if proc.is_alive():
                        proc.kill()
                        proc.join(5.0)
                self._drain_slot(slot)
                if slot.conn is not None:
                    slot.conn.close()
                slot.process, slot.conn = None, None

    # -- supervision ----------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=self._target, name=f"ironwatch-ingest-{slot.client_id}",
            args=(self.settings, slot.client_id, child,
                  logging.getLogger().getEffectiveLevel()),
            daemon=True,
        )
        proc.start()
        child.close()
        slot.process, slot.conn = proc, parent
        slot.started_at = time.monotonic()
        slot.restart_at = None
        log.info("ingestion worker %s started (pid %s)", slot.client_id, proc.pid)

    def _watch(self) -> None:
        while not self._stopping.wait(self.report_s):
            with self._lock:
                self._drain()
                now = time.monotonic()
                for slot in self._slots:
                    self._check(slot, now)

    def _check(self, slot: _Slot, now: float) -> None:
        proc = slot.process
        if proc is not None and proc.exitcode is not None:
            self.restarts += 1
            # A worker that ran a while before dying is restarted at once; one that dies
            # again and again waits longer each time.
            ran_s = now - slot.started_at
            slot.backoff_s = (0.0 if ran_s > 60.0 else
                              min(max(0.5, slot.backoff_s * 2), self.restart_backoff_max_s))
            log.error("ingestion worker %s (pid %s) died with exit code %s; restarting in %.1f s"
                      " (restart #%d)", slot.client_id, proc.pid, proc.exitcode, slot.backoff_s,
                      self.restarts)
            self._drain_slot(slot)
            slot.before.append(slot.stats)
            slot.dropped_before += slot.dropped
            slot.stats, slot.dropped, slot.counts, slot.pending = IngestStats(), 0, None, 0
            if slot.conn is not None:
                slot.conn.close()
            slot.process, slot.conn = None, None
            slot.restart_at = now + slot.backoff_s
        if slot.process is None and slot.restart_at is not None and now >= slot.restart_at:
            self._spawn(slot)

    def _drain(self) -> None:
        """Ask every live worker for its counters and wait for the answers (~0.2 s each,
        at most 2 s), so what `stats` returns is never older than the question."""
        asked = []
        for slot in self._slots:
            if slot.conn is not None and slot.process is not None and slot.process.is_alive():
                try:
                    slot.conn.send(_ASK)
                    slot.pending += 1
                    asked.append(slot)
                except OSError:
                    pass
        deadline = time.monotonic() + 2.0
        for slot in asked:
            self._drain_slot(slot, deadline)

    @staticmethod
    def _drain_slot(slot: _Slot, deadline: float | None = None) -> None:
        """Take what a worker sent: every answer it owes (until `deadline`), then anything
        else waiting (a stopping worker's last report)."""
        conn = slot.conn
        if conn is None:
            return
        try:
            while True:
                wait_s = 0.0
                if slot.pending > 0 and deadline is not None:
                    wait_s = max(0.0, deadline - time.monotonic())
                if not conn.poll(wait_s):
                    return
                slot.stats, slot.dropped, counts = cast(
                    tuple[IngestStats, int, IngestCounts], conn.recv())
                slot.pending = max(0, slot.pending - 1)
                # Its metrics join the service's: /metrics covers ingestion in workers.
                add_ingest_counts(counts, slot.counts)
                slot.counts = counts
        except (EOFError, OSError):
            pass
