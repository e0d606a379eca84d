"""E-mail over SMTP, sent from the e-mail outbox by a background worker.

Rows are written with the escalation they report (cloud.domain.notifications); this worker
claims due rows with a short lease and sends each with the standard library's `smtplib`
(plain SMTP, STARTTLS or SMTPS, optional login), retrying temporary failures with
exponential backoff (tenacity) in-process and then across passes (persisted
`next_attempt_at`). A permanent refusal (5xx) fails the row for good; every failure is
counted and logged, and nothing here runs in a request. An e-mail still unsent after
`max_age_s` (default a day: the mail server was missing or down that long) is expired
rather than sent late, so configuring SMTP never floods people with stale escalations.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import select, update

from cloud.db.engine import SessionFactory
from cloud.db.models import EmailDelivery
from cloud.delivery_worker import DeliveryWorker
from cloud.domain.clock import utc_now
from cloud.settings import CloudSettings

__all__ = ["EmailDispatcher", "MailError", "MailStats", "SmtpConfig", "smtp_config"]

log = logging.getLogger(__name__)


class MailError(Exception):
    """One send failed; `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class _TemporaryMailError(MailError):
    pass


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send: server, transport security, login and the sender address."""

    host: str
    port: int = 25
    security: str = "none"  # "none" | "starttls" | "ssl"
    username: str | None = None
    password: str | None = None
    sender: str = "ironwatch@localhost"
    timeout_s: float = 10.0
    ssl_context: ssl.SSLContext | None = None


def smtp_config(settings: CloudSettings) -> SmtpConfig | None:
    """The SMTP server of the settings, or None when no smtp_host is set."""
    if settings.smtp_host is None:
        return None
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        sender=settings.smtp_from,
        timeout_s=settings.smtp_timeout_s,
        ssl_context=(
            ssl.create_default_context(cafile=str(settings.smtp_ca_file))
            if settings.smtp_ca_file is not None
            else None
        ),
    )


@dataclass
class MailStats:
    """Counters since start: shown in logs and available to health checks."""

    sent: int = 0
    failed_attempts: int = 0
    failed_for_good: int = 0
    expired: int = 0


@dataclass(frozen=True)
class _Row:
    id: int
    to_address: str
    subject: str
    body_text: str
    body_html: str
    attempts: int
    next_attempt_at: datetime


class EmailDispatcher(DeliveryWorker):
    """Sends due e-mail rows; `deliver_due()` is one pass, `start()` runs a thread."""

    thread_name = "ironwatch-mail"

    def __init__(
        self,
        session_factory: SessionFactory,
        smtp: SmtpConfig,
        *,
        attempts_per_pass: int = 3,
        max_attempts: int = 10,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 3600.0,
        lease_s: float = 120.0,
        poll_interval_s: float = 2.0,
        max_age_s: float = 86_400.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(poll_interval_s)
        self._session_factory = session_factory
        self.smtp = smtp
        self._max_age = timedelta(seconds=max_age_s)
        self._attempts_per_pass = attempts_per_pass
        self._max_attempts = max_attempts
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._lease = timedelta(seconds=lease_s)
        self._clock = clock
        self.stats = MailStats()

    # -- one message -----------------------------------------------------------------------

    def message(self, row: _Row) -> EmailMessage:
        """The MIME message of a row: plain text with an HTML alternative."""
        msg = EmailMessage()
        msg["From"] = self.smtp.sender
        msg["To"] = row.to_address
        msg["Subject"] = row.subject
        msg["Date"] = format_datetime(self._clock())
        msg["Message-ID"] = make_msgid(idstring=f"ironwatch-mail-{row.id}")
        msg["X-Ironwatch-Delivery"] = str(row.id)
        msg.set_content(row.body_text)
        msg.add_alternative(row.body_html, subtype="html")
        return msg

    def _connect(self) -> smtplib.SMTP:
        cfg = self.smtp
        context = cfg.ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if cfg.security == "ssl":
            client = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=context)
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        try:
            client.ehlo()
            if cfg.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if cfg.username is not None and cfg.password is not None:
                client.login(cfg.username, cfg.password)
        except BaseException:
            client.close()
            raise
        return client

    def _send_once(self, row: _Row) -> None:
        try:
            message = self.message(row)
        except (ValueError, TypeError) as err:
            raise MailError(f"cannot build the message: {err}", retryable=False) from err
        try:
            client = self._connect()
            try:
                client.send_message(message)
            finally:
                try:
                    client.quit()
                except smtplib.SMTPException:
                    client.close()
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            retry = all(400 <= code < 500 for code in codes)
            raise (_TemporaryMailError if retry else MailError)(
                f"recipient refused: {err.recipients}", retryable=retry
            ) from err
        except smtplib.SMTPResponseException as err:
            retry = 400 <= err.smtp_code < 500
            raise (_TemporaryMailError if retry else MailError)(
                f"SMTP {err.smtp_code}: {err.smtp_error!r}", retryable=retry
            ) from err
        except (smtplib.SMTPException, OSError) as err:
            # Connection refused, timeouts, TLS trouble, a dropped connection: try later.
            raise _TemporaryMailError(f"{type(err).__name__}: {err}", retryable=True) from err

    def _send(self, row: _Row) -> tuple[bool, int, str | None, bool]:
        """(sent, attempts, error, retryable) after up to attempts_per_pass tries."""
        attempts = 0
        retrying = self.attempts_in_a_pass(
            self._attempts_per_pass, self._initial_backoff_s, _TemporaryMailError
        )
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    self._send_once(row)
        except MailError as err:
            return False, attempts, str(err), err.retryable
        return True, attempts, None, False

    # -- the outbox ------------------------------------------------------------------------

    def _claim(self, row: _Row) -> bool:
        now = self._clock()
        with self._session_factory() as session:
            result = session.execute(
                update(EmailDelivery)
                .where(
                    EmailDelivery.id == row.id,
                    EmailDelivery.state == "pending",
                    EmailDelivery.next_attempt_at == row.next_attempt_at,
                )
                .values(next_attempt_at=now + self._lease)
            )
            session.commit()
            return bool(getattr(result, "rowcount", 0) == 1)

    def _record(self, row: _Row, sent: bool, attempts: int, error: str | None,
                retryable: bool) -> None:
        now = self._clock()
        total = row.attempts + attempts
        failed_attempts = attempts - int(sent)
        self.stats.failed_attempts += failed_attempts
        with self._session_factory() as session:
            stored = session.get(EmailDelivery, row.id)
            if stored is None:
                return
            stored.attempts = total
            stored.last_attempt_at = now
            stored.last_error = error
            if sent:
                stored.state = "sent"
                stored.sent_at = now
                self.stats.sent += 1
            elif not retryable or total >= self._max_attempts:
                stored.state = "failed"
                self.stats.failed_for_good += 1
                log.warning("e-mail %s to %s failed for good: %s", row.id, row.to_address, error)
            else:
                seconds = self._initial_backoff_s * (2 ** max(0, total - 1))
                stored.next_attempt_at = now + timedelta(seconds=min(self._max_backoff_s, seconds))
                log.info("e-mail %s to %s failed, retrying: %s", row.id, row.to_address, error)
            session.commit()

    def deliver_due(self, limit: int = 50) -> int:
        """One pass over due pending e-mails, oldest first; returns how many were sent.

        A pass stops at the first temporary failure: the server is likely down for all.
        """
        now = self._clock()
        with self._session_factory() as session:
            expired = session.execute(
                update(EmailDelivery)
                .where(
                    EmailDelivery.state == "pending",
                    EmailDelivery.created_at < now - self._max_age,
                )
                .values(state="expired", last_error="not sent within max_age_s; dropped")
            )
            session.commit()
            count = int(getattr(expired, "rowcount", 0) or 0)
            if count:
                self.stats.expired += count
                log.warning("%d e-mails expired unsent (older than %s)", count, self._max_age)
            rows = [
                _Row(r.id, r.to_address, r.subject, r.body_text, r.body_html, r.attempts,
                     r.next_attempt_at)
                for r in session.scalars(
                    select(EmailDelivery)
                    .where(EmailDelivery.state == "pending", EmailDelivery.next_attempt_at <= now)
                    .order_by(EmailDelivery.id)
                    .limit(limit)
                )
            ]
        sent_count = 0
        for row in rows:
            if self._stop.is_set():
                break
            if not self._claim(row):
                continue
            sent, attempts, error, retryable = self._send(row)
            self._record(row, sent, attempts, error, retryable)
            sent_count += int(sent)
            if not sent and retryable:
                break
        return sent_count
