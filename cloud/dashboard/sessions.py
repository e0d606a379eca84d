"""Server-side sessions of the dashboard, distinct from API tokens.

Signing in with an API token starts a session: the browser gets a random 256-bit secret in
an HttpOnly cookie, the database keeps its SHA-256 with the viewer's name and role. The
token itself is never stored in the browser. Signing out marks the session revoked, so a
copied cookie stops working at once; revoking the API token ends its sessions too, and
every session ends after `SESSION_LIFETIME`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from cloud.db.engine import SessionFactory
from cloud.db.models import ApiToken, DashboardSession

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "SESSION_LIFETIME",
    "SessionStore",
    "SignedIn",
    "csrf_token_for",
]

SESSION_COOKIE = "ironwatch_session"
# Set for browsers without a session, so the sign-in form has a CSRF token too.
CSRF_COOKIE = "ironwatch_csrf"
SESSION_LIFETIME = timedelta(hours=12)
# Ended sessions are kept this long (for the record), then deleted at the next sign-in.
KEEP_ENDED = timedelta(days=7)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def csrf_token_for(cookie_secret: str) -> str:
    """The CSRF token of forms shown to the holder of a cookie: derived from the cookie's
    secret, so only that browser can know it and the server can check it without storage."""
    return hmac.new(
        cookie_secret.encode("utf-8"), b"ironwatch-dashboard-csrf", hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """The holder of a valid session."""

    name: str
    role: str
    token_id: int | None
    # The customer a customer's session is bound to (its portal shows nothing else).
    customer_id: str | None = None


class SessionStore:
    """Start, look up and end dashboard sessions in the cloud database."""

    def __init__(self, session_factory: SessionFactory, clock: Callable[[], datetime]) -> None:
        self._session_factory = session_factory
        self._clock = clock

    def start(
        self,
        db: Session,
        *,
        name: str,
        role: str,
        token_id: int | None,
        customer_id: str | None = None,
    ) -> str:
        """A new session on the caller's database session (committed by the caller); returns
        the secret for the cookie, which is not stored anywhere."""
        now = self._clock()
        db.execute(delete(DashboardSession).where(DashboardSession.expires_at < now - KEEP_ENDED))
        secret = secrets.token_urlsafe(32)
        db.add(
            DashboardSession(
                id=_digest(secret),
                token_id=token_id,
                name=name,
                role=role,
                customer_id=customer_id,
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
        return secret

    def resolve(self, secret: str) -> SignedIn | None:
        """Who holds this cookie secret, or None if the session is unknown, ended or expired,
        or the API token it was started with is revoked or expired."""
        if not secret or len(secret) > 128:
            return None
        now = self._clock()
        with self._session_factory() as db:
            row = db.get(DashboardSession, _digest(secret))
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                return None
            if row.token_id is not None:
                token = db.get(ApiToken, row.token_id)
                if (
                    token is None
                    or token.revoked_at is not None
                    or (token.expires_at is not None and token.expires_at <= now)
                ):
                    return None
            return SignedIn(
                name=row.name, role=row.role, token_id=row.token_id, customer_id=row.customer_id
            )

    def end(self, secret: str) -> bool:
        """Revoke the session of this cookie secret; True if one was open."""
        if not secret or len(secret) > 128:
            return False
        with self._session_factory() as db:
            result = db.execute(
                update(DashboardSession)
                .where(
                    DashboardSession.id == _digest(secret),
                    DashboardSession.revoked_at.is_(None),
                )
                .values(revoked_at=self._clock())
            )
            db.commit()
        return bool(getattr(result, "rowcount", 0))
