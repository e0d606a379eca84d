"""The background thread shared by the outbox senders (webhooks, e-mail).

A sender implements `deliver_due()` (one pass over its due rows); this class calls it every
poll interval, or at once when woken after a commit. A failed pass is logged and never
fatal: the rows stay in the database and the next pass takes them up.
"""

from __future__ import annotations

import logging
import threading

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

__all__ = ["DeliveryWorker"]

log = logging.getLogger(__name__)


class DeliveryWorker:
    """Runs `deliver_due()` in a daemon thread named `thread_name` until `stop()`."""

    thread_name = "ironwatch-delivery"

    def __init__(self, poll_interval_s: float) -> None:
        self._poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def deliver_due(self, limit: int = 50) -> int:
        raise NotImplementedError

    @staticmethod
    def attempts_in_a_pass(
        attempts: int, initial_backoff_s: float, retry_on: type[BaseException]
    ) -> Retrying:
        """The tries one pass makes at one message: `attempts`, backing off exponentially
        (at most 30 s apart), only on `retry_on`; then the message waits for a later pass."""
        return Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=initial_backoff_s, max=30),
            retry=retry_if_exception_type(retry_on),
            reraise=True,
        )

    def wake(self) -> None:
        """Deliver now instead of at the next poll (call after committing a change)."""
        self._wake.set()

    def run(self) -> None:
        """Deliver until `stop()`; errors are logged, never fatal: the outbox keeps the work."""
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:
                log.exception("%s pass failed; retrying at the next poll", self.thread_name)
            self._wake.wait(self._poll_interval_s)
            self._wake.clear()

    def start(self) -> None:
        """Run the worker in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the worker thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
