"""API tokens: random, shown once, stored as a SHA-256 digest.

SHA-256 (not bcrypt/argon2) is enough because the token carries 256 bits of randomness:
slow hashes defend guessable passwords, and a fast digest allows an indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import ApiToken, Customer, Gateway
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidInputError, InvalidTransitionError, NotFoundError
from cloud.domain.vocabulary import ROLES, Role

__all__ = ["TOKEN_PREFIX", "authenticate", "create_token", "hash_token", "revoke_token"]

TOKEN_PREFIX = "iw_"


def hash_token(token: str) -> str:
    """Hex SHA-256 of the token text."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    *,
    name: str,
    role: Role,
    actor: str,
    now: datetime,
    gateway_id: str | None = None,
    customer_id: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the token text, which is never stored.

    A gateway token is bound to one gateway and a customer token to one customer.
    """
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}", details={"allowed": list(ROLES)})
    if (role == "gateway") != (gateway_id is not None):
        raise InvalidInputError("gateway tokens need a gateway_id, and only they may have one")
    if gateway_id is not None and session.get(Gateway, gateway_id) is None:
        raise NotFoundError(f"gateway {gateway_id} not found")
    if (role == "customer") != (customer_id is not None):
        raise InvalidInputError("customer tokens need a customer_id, and only they may have one")
    if customer_id is not None and session.get(Customer, customer_id) is None:
        raise NotFoundError(f"customer {customer_id} not found")
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        role=role,
        token_hash=hash_token(text),
        prefix=text[: len(TOKEN_PREFIX) + 6],
        gateway_id=gateway_id,
        customer_id=customer_id,
        created_at=require_utc(now),
        created_by=actor,
        expires_at=require_utc(expires_at) if expires_at is not None else None,
    )
    session.add(row)
    session.flush()
    return row, text


def authenticate(session: Session, token: str, *, now: datetime) -> ApiToken | None:
    """The live token row for this token text, or None (unknown, revoked or expired)."""
    digest = hash_token(token)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).one_or_none()
    # The lookup is by digest; compare again in constant time for good measure.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    row.last_used_at = require_utc(now)
    return row


def revoke_token(session: Session, token_id: int, *, now: datetime) -> ApiToken:
    """Revoke a token; it stops working at once."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError(f"token {token_id} not found")
    if row.revoked_at is not None:
        raise InvalidTransitionError(f"token {token_id} is already revoked")
    row.revoked_at = require_utc(now)
    session.flush()
    return row
