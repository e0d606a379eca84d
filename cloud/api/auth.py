"""Who is calling: bearer tokens from the database, or the bootstrap admin token.

Roles and what each may do (enforced per route with `require(...)`; admin may do all):
gateway: read its own registration, report its own status.
engineer: read assets, gateways, alerts, work orders, KPIs, telemetry; acknowledge,
resolve and judge (verdict) alerts.
service_desk: read assets, alerts; create, edit and move work orders; escalations,
maintenance plans, webhook delivery log; KPIs.
admin: everything, including tokens, gateways and assets.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cloud.domain.tokens import authenticate
from cloud.domain.vocabulary import Role
from cloud.settings import CloudSettings

__all__ = ["BOOTSTRAP_ADMIN", "Principal", "resolve_principal"]

BOOTSTRAP_ADMIN = "bootstrap-admin"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; `name` goes into history rows as the actor."""

    role: Role
    name: str
    token_id: int | None = None
    gateway_id: str | None = None

    def can_act_for_gateway(self, gateway_id: str) -> bool:
        """Admins act for any gateway; a gateway token only for its own."""
        return self.role == "admin" or (self.role == "gateway" and self.gateway_id == gateway_id)


def resolve_principal(
    session: Session, settings: CloudSettings, token: str, *, now: datetime
) -> Principal | None:
    """The caller behind a bearer token, or None if the token is not valid."""
    bootstrap = settings.admin_token
    if bootstrap is not None and hmac.compare_digest(
        token.encode("utf-8"), bootstrap.get_secret_value().encode("utf-8")
    ):
        return Principal(role="admin", name=BOOTSTRAP_ADMIN)
    row = authenticate(session, token, now=now)
    if row is None:
        return None
    return Principal(
        role=row.role,  # type: ignore[arg-type]
        name=f"token:{row.name}",
        token_id=row.id,
        gateway_id=row.gateway_id,
    )
