"""Who is looking at the dashboard: an API token given once at /login, kept in a cookie.

The pages accept the same tokens as the REST API and the same roles. The token goes into
an HttpOnly, SameSite=Strict cookie, so page scripts cannot read it and other sites cannot
make the browser send it. Without a cookie, a browser on the same host (127.0.0.1/::1)
gets read-only access unless `dashboard_local_read_only` is turned off.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from cloud.domain.tokens import authenticate
from cloud.settings import CloudSettings

__all__ = [
    "COOKIE_NAME",
    "READ_ROLES",
    "WRITE_ROLES",
    "Principal",
    "is_loopback",
    "local_read_only_enabled",
    "principal_for_token",
]

COOKIE_NAME = "ironwatch_dashboard"
# Gateways have tokens too, but they publish telemetry; they do not read the fleet.
READ_ROLES = frozenset({"engineer", "service_desk", "admin"})
# Requesting a snapshot sends a command to a gateway: the same roles the API allows for it.
WRITE_ROLES = frozenset({"engineer", "admin"})


@dataclass(frozen=True)
class Principal:
    """The viewer of a page: a token's name and role, or the anonymous local viewer."""

    name: str
    role: str
    via_token: bool

    @property
    def can_write(self) -> bool:
        return self.via_token and self.role in WRITE_ROLES


LOCAL_VIEWER = Principal(name="local viewer", role="viewer", via_token=False)


def local_read_only_enabled(settings: CloudSettings) -> bool:
    """The setting, defaulting to on: a laptop demo should open without a token."""
    return bool(getattr(settings, "dashboard_local_read_only", True))


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1; `testclient` counts, as in-process tests are local."""
    if host is None:
        return False
    if host == "testclient":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def principal_for_token(
    session: Session, settings: CloudSettings, token: str, now: datetime | None = None
) -> Principal | None:
    """The principal a token stands for, or None if it is unknown, revoked, expired or a gateway's.

    The bootstrap admin token from the settings is compared in constant time; other tokens
    go through the API's own check, so revoking a token locks it out of both. The caller
    decides whether to commit the `last_used_at` stamp that check leaves on the session.
    """
    token = token.strip()
    if not token:
        return None
    admin = settings.admin_token
    if admin is not None and hmac.compare_digest(
        token.encode("utf-8"), admin.get_secret_value().encode("utf-8")
    ):
        return Principal(name="admin", role="admin", via_token=True)
    row = authenticate(session, token, now=now or datetime.now(UTC))
    if row is None or row.role not in READ_ROLES:
        return None
    return Principal(name=row.name, role=row.role, via_token=True)
