"""Who is calling: bearer tokens from the database, or the bootstrap admin token.

Roles and what each may do (enforced per route with `require(...)`; admin may do all):
gateway: read its own registration, report its own status.
engineer: read assets, gateways, alerts, work orders, KPIs, telemetry; acknowledge,
resolve and judge (verdict) alerts.
service_desk: read assets, alerts; create, edit and move work orders; escalations,
maintenance plans, webhook delivery log; KPIs.
admin: everything, including tokens, gateways and assets.
customer: bound to one customer; reads that customer's assets, alerts, work orders and
telemetry only (anything else answers 404, as if it did not exist), reports faults and
rates finished work orders.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cloud.domain.scope import FLEET, Scope
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
    customer_id: str | None = None

    @property
    def scope(self) -> Scope:
        """What the caller may see: one customer's machines for a customer, else the fleet."""
        return Scope.of_customer(self.customer_id) if self.role == "customer" else FLEET

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
        customer_id=row.customer_id,
    )
