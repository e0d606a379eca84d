"""Signed webhooks to the subscribers, sent from the outbox by a background worker.

Deliveries are rows written with the change they announce, one per subscription
(cloud.domain.outbox); this worker claims due rows with a short lease, POSTs each to its
subscription's URL with an HMAC-SHA256 signature (the subscription's secret) over
timestamp + body, retries with exponential backoff (tenacity) in-process and then across
passes (persisted `next_attempt_at`), so a restart resumes where it stopped. At least
once: receivers deduplicate on the `X-Ironwatch-Delivery` header. A receiver that fails
is skipped for the rest of the pass, so it never holds up the other subscriptions.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select, update
from tenacity import (
    RetryError,
)

from cloud.db.engine import SessionFactory
from cloud.db.models import WebhookDelivery, WebhookSubscription
from cloud.delivery_worker import DeliveryWorker
from cloud.domain.clock import utc_now
from cloud.domain.subscriptions import refused_address
from cloud.settings import CloudSettings

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookDispatcher",
    "WebhookError",
    "make_dispatcher",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Ironwatch-Signature"
TIMESTAMP_HEADER = "X-Ironwatch-Timestamp"
DELIVERY_HEADER = "X-Ironwatch-Delivery"
EVENT_HEADER = "X-Ironwatch-Event"
DEFAULT_TOLERANCE_S = 300
_RETRYABLE_STATUS = frozenset({408, 425, 429})

log = logging.getLogger(__name__)


class WebhookError(Exception):
    """One delivery attempt failed; `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, status_code: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable


class _RetryableError(WebhookError):
    pass


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: bytes,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """True if the signature matches and the timestamp is within `tolerance_s` of now."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True)
class _Target:
    subscription_id: int
    url: str
    secret: bytes


@dataclass(frozen=True)
class _Outcome:
    delivered: bool
    attempts: int
    status_code: int | None
    error: str | None
    retryable: bool


class WebhookDispatcher(DeliveryWorker):
    """Sends due outbox rows to their subscriptions; `deliver_due()` is one pass, `start()`
    runs a thread."""

    thread_name = "ironwatch-webhooks"

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 10.0,
        attempts_per_pass: int = 3,
        max_attempts: int = 12,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 3600.0,
        lease_s: float = 60.0,
        poll_interval_s: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
        refuse_private: bool = False,
    ) -> None:
        super().__init__(poll_interval_s)
        self._session_factory = session_factory
        self._refuse_private = refuse_private
        self._client = client or httpx.Client(timeout=timeout_s)
        self._own_client = client is None
        self._attempts_per_pass = attempts_per_pass
        self._max_attempts = max_attempts
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._lease = timedelta(seconds=lease_s)
        self._clock = clock

    # -- one attempt and one delivery -------------------------------------------------

    def _post(self, target: _Target, delivery_id: int, event: str, body: bytes) -> int:
        if self._refuse_private:
            why = refused_address(urlsplit(target.url).hostname or "")
            if why is not None:
                raise WebhookError(f"refused: {why}", status_code=None, retryable=False)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(target.secret, timestamp, body),
            DELIVERY_HEADER: str(delivery_id),
            EVENT_HEADER: event,
        }
        try:
            response = self._client.post(target.url, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise _RetryableError(
                f"{type(err).__name__}: {err}", status_code=None, retryable=True
            ) from err
        code = response.status_code
        if 200 <= code < 300:
            return code
        message = f"HTTP {code}: {response.text[:200]}"
        if code >= 500 or code in _RETRYABLE_STATUS:
            raise _RetryableError(message, status_code=code, retryable=True)
        raise WebhookError(message, status_code=code, retryable=False)

    def _send(self, target: _Target, delivery_id: int, event: str, body: bytes) -> _Outcome:
        attempts = 0
        retrying = self.attempts_in_a_pass(
            self._attempts_per_pass, self._initial_backoff_s, _RetryableError
        )
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    code = self._post(target, delivery_id, event, body)
                    return _Outcome(True, attempts, code, None, False)
        except WebhookError as err:
            return _Outcome(False, attempts, err.status_code, str(err), err.retryable)
        except RetryError as err:  # pragma: no cover - reraise=True makes this unreachable
            return _Outcome(False, attempts, None, str(err), True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, total_attempts: int) -> timedelta:
        seconds = self._initial_backoff_s * (2 ** max(0, total_attempts - 1))
        return timedelta(seconds=min(self._max_backoff_s, seconds))

    def _claim(self, delivery_id: int, seen_next_attempt: datetime) -> bool:
        # Optimistic lease: whoever moves next_attempt_at first owns the row for lease_s;
        # a worker that dies mid-send lets the lease run out and another one retries.
        now = self._clock()
        with self._session_factory() as session:
            result = session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.state == "pending",
                    WebhookDelivery.next_attempt_at == seen_next_attempt,
                )
                .values(next_attempt_at=now + self._lease)
            )
            session.commit()
            return bool(getattr(result, "rowcount", 0) == 1)

    def deliver_due(self, limit: int = 50) -> int:
        """One pass over due pending deliveries, oldest first; returns how many were delivered.

        Per subscription and work order, only the oldest pending delivery is sent, so updates
        never overtake the creation they follow. Deliveries of an inactive subscription wait.
        """
        now = self._clock()
        with self._session_factory() as session:
            heads = (
                select(func.min(WebhookDelivery.id))
                .where(WebhookDelivery.state == "pending")
                .group_by(WebhookDelivery.subscription_id, WebhookDelivery.work_order_id)
            )
            rows = session.execute(
                select(
                    WebhookDelivery.id,
                    WebhookDelivery.event,
                    WebhookDelivery.body,
                    WebhookDelivery.next_attempt_at,
                    WebhookDelivery.attempts,
                    WebhookSubscription.id,
                    WebhookSubscription.url,
                    WebhookSubscription.secret,
                )
                .join(
                    WebhookSubscription,
                    WebhookSubscription.id == WebhookDelivery.subscription_id,
                )
                .where(
                    WebhookDelivery.state == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookSubscription.active.is_(True),
                    (WebhookDelivery.id.in_(heads)) | (WebhookDelivery.work_order_id.is_(None)),
                )
                .order_by(WebhookDelivery.id)
                .limit(limit)
            ).all()
        delivered = 0
        failing: set[int] = set()
        for (delivery_id, event, body, next_attempt_at, previous_attempts,
             sub_id, url, secret) in rows:
            if self._stop.is_set():
                break
            target = _Target(sub_id, url, secret.encode("utf-8"))
            if target.subscription_id in failing:
                continue  # this receiver is down; the others are not kept waiting for it
            if not self._claim(delivery_id, next_attempt_at):
                continue
            outcome = self._send(target, delivery_id, event, body.encode("utf-8"))
            self._record(delivery_id, previous_attempts, outcome)
            delivered += int(outcome.delivered)
            if not outcome.delivered:
                failing.add(target.subscription_id)
        return delivered

    def _record(self, delivery_id: int, previous_attempts: int, outcome: _Outcome) -> None:
        now = self._clock()
        total = previous_attempts + outcome.attempts
        with self._session_factory() as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                return
            row.attempts = total
            row.last_attempt_at = now
            row.last_status_code = outcome.status_code
            row.last_error = outcome.error
            if outcome.delivered:
                row.state = "delivered"
                row.delivered_at = now
            elif not outcome.retryable or total >= self._max_attempts:
                row.state = "failed"
                log.warning("webhook delivery %s failed for good: %s", delivery_id, outcome.error)
            else:
                row.next_attempt_at = now + self._backoff(total)
            session.commit()

    # -- background worker ---------------------------------------------------------------

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the worker thread and close the HTTP client we created."""
        super().stop(timeout_s)
        if self._own_client:
            self._client.close()


def make_dispatcher(
    settings: CloudSettings,
    session_factory: SessionFactory,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> WebhookDispatcher:
    """The dispatcher for every subscription, with the settings' address policy."""
    return WebhookDispatcher(
        session_factory,
        clock=clock,
        refuse_private=settings.webhook_refuse_private_addresses,
    )
