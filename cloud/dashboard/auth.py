"""Who is looking at the dashboard: an API token given once at /login starts a session.

The pages accept the same tokens as the REST API and the same roles. Signing in starts a
server-side session (`cloud.dashboard.sessions`) whose random secret goes into an HttpOnly,
SameSite=Strict cookie; the token itself is not kept by the browser. Without a session, a
browser on the same host (127.0.0.1/::1) gets read-only access unless
`dashboard_local_read_only` is turned off.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from cloud.api.auth import Principal, resolve_principal
from cloud.dashboard.sessions import SESSION_COOKIE
from cloud.settings import CloudSettings

__all__ = [
    "ACTION_ROLES",
    "COOKIE_NAME",
    "LOCAL_VIEWER",
    "PORTAL_ROLES",
    "READ_ROLES",
    "WRITE_ROLES",
    "Viewer",
    "is_loopback",
    "local_read_only_enabled",
    "principal_for_token",
    "viewer_for_token",
]

COOKIE_NAME = SESSION_COOKIE
# Gateways have tokens too, but they publish telemetry; they do not read the fleet.
READ_ROLES = frozenset({"engineer", "service_desk", "admin"})
# Customers sign in too, but only to the portal (/portal), which shows their own machines.
PORTAL_ROLES = frozenset({"customer"})
# Requesting a snapshot sends a command to a gateway: the same roles the API allows for it.
WRITE_ROLES = frozenset({"engineer", "admin"})
# Who may do what on the dashboard: the roles the REST API allows for the same action
# (cloud/api/routes: acknowledge and verdict for engineers, work orders for the service
# desk, comments for both; admin always).
ACTION_ROLES: dict[str, frozenset[str]] = {
    "acknowledge": WRITE_ROLES,
    "verdict": WRITE_ROLES,
    "snapshot": WRITE_ROLES,
    "comment": frozenset({"engineer", "service_desk", "admin"}),
    "open_work_order": frozenset({"service_desk", "admin"}),
    "assign": frozenset({"service_desk", "admin"}),
}


@dataclass(frozen=True)
class Viewer:
    """The viewer of a page: a token's name and role, or the anonymous local viewer."""

    name: str
    role: str
    via_token: bool
    customer_id: str | None = None

    @property
    def is_customer(self) -> bool:
        return self.role in PORTAL_ROLES

    @property
    def can_write(self) -> bool:
        return self.via_token and self.role in WRITE_ROLES

    def may(self, action: str) -> bool:
        """Whether this viewer may do `action` (a key of ACTION_ROLES); only signed-in."""
        return self.via_token and self.role in ACTION_ROLES.get(action, frozenset())


LOCAL_VIEWER = Viewer(name="local viewer", role="viewer", via_token=False)


def local_read_only_enabled(settings: CloudSettings) -> bool:
    """The setting, defaulting to on: a laptop demo should open without a token."""
    return bool(getattr(settings, "dashboard_local_read_only", True))


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1 (also IPv4-mapped)."""
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def principal_for_token(
    session: Session, settings: CloudSettings, token: str, now: datetime | None = None
) -> Principal | None:
    """The principal a token stands for, or None if the API would refuse it or it is a gateway's.

    A customer's token is accepted; the pages then show it the portal only.

    The check is the API's own (`cloud.api.auth.resolve_principal`), so the bootstrap admin
    token works and revoking a token locks it out of both. The caller decides whether to
    commit the `last_used_at` stamp that check leaves on the session.
    """
    token = token.strip()
    if not token:
        return None
    caller = resolve_principal(session, settings, token, now=now or datetime.now(UTC))
    if caller is None or caller.role not in READ_ROLES | PORTAL_ROLES:
        return None
    return caller


def viewer_for_token(
    session: Session, settings: CloudSettings, token: str, now: datetime | None = None
) -> Viewer | None:
    """The viewer a token would sign in as, or None (see `principal_for_token`)."""
    caller = principal_for_token(session, settings, token, now)
    if caller is None:
        return None
    return Viewer(
        name=caller.name, role=caller.role, via_token=True, customer_id=caller.customer_id
    )
