"""Gateway lifecycle: registration by an admin, status reports from the gateway itself."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cloud.db.models import Gateway, GatewayEvent
from cloud.domain.clock import require_utc
from cloud.domain.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = ["KNOWN_EPOCHS", "get_gateway", "note_epoch", "record_event", "record_status",
           "register_gateway"]

_STATES = ("online", "offline", "unknown")
KNOWN_EPOCHS = 16  # outbox epochs remembered per gateway (in its status)


def get_gateway(session: Session, gateway_id: str) -> Gateway:
    """The gateway with this id, or NotFoundError."""
    gateway = session.get(Gateway, gateway_id)
    if gateway is None:
        raise NotFoundError(f"gateway {gateway_id} not found")
    return gateway


def register_gateway(
    session: Session, *, gateway_id: str, name: str = "", with_credentials: bool = False
) -> tuple[Gateway, str | None]:
    """Create a gateway; optionally a broker password, returned once and stored hashed."""
    if session.get(Gateway, gateway_id) is not None:
        raise ConflictError(f"gateway {gateway_id} already exists")
    password = secrets.token_urlsafe(24) if with_credentials else None
    gateway = Gateway(
        id=gateway_id,
        name=name or gateway_id,
        credentials_hash=(
            hashlib.sha256(password.encode("utf-8")).hexdigest() if password else None
        ),
        state="unknown",
        status={},
    )
    session.add(gateway)
    session.flush()
    return gateway, password


def record_status(
    session: Session,
    *,
    gateway_id: str,
    state: str,
    now: datetime,
    seq: int | None = None,
    software_version: str | None = None,
    counters: dict[str, int] | None = None,
    extra: dict[str, Any] | None = None,
) -> Gateway:
    """Store what a gateway says about itself (from MQTT status or the REST API)."""
    if state not in _STATES:
        raise InvalidInputError(f"unknown gateway state {state!r}", details={"allowed": _STATES})
    gateway = get_gateway(session, gateway_id)
    gateway.state = state
    gateway.last_seen = require_utc(now)
    if seq is not None:
        gateway.last_seq = seq
    if software_version is not None:
        gateway.software_version = software_version
    status = dict(gateway.status or {})
    if counters is not None:
        status["counters"] = counters
    if extra:
        status.update(extra)
    # A new dict, so SQLAlchemy sees the JSON column change.
    gateway.status = status
    session.flush()
    return gateway


def record_event(
    session: Session, *, gateway_id: str, kind: str, message: str, now: datetime,
    detail: dict[str, Any] | None = None,
) -> GatewayEvent:
    """Keep an event about a gateway that an operator should see."""
    event = GatewayEvent(gateway_id=gateway_id, at=require_utc(now), kind=kind,
                         message=message, detail=detail or {})
    session.add(event)
    session.flush()
    return event


def note_epoch(
    session: Session, *, gateway_id: str, epoch: str, first_seq: int, now: datetime
) -> GatewayEvent | None:
    """Remember the outbox epoch a gateway sends under; an event when it is a new one.

    A gateway whose outbox was deleted (SD card swapped, reinstalled) restarts its
    sequence numbers under a new epoch: its records are stored, and the operator is told,
    since the old outbox's unsent records are gone. The first epoch of a gateway, and a
    replay of an epoch already seen, raise nothing.
    """
    gateway = get_gateway(session, gateway_id)
    status = dict(gateway.status or {})
    known: list[str] = list(status.get("epochs", []))
    if epoch in known:
        return None
    previous = status.get("epoch")
    status["epoch"] = epoch
    status["epochs"] = [*known, epoch][-KNOWN_EPOCHS:]
    gateway.status = status
    if previous is None:
        session.flush()
        return None
    return record_event(
        session, gateway_id=gateway_id, kind="new_epoch", now=now,
        message=(f"gateway {gateway_id} started a new outbox (epoch {epoch}, from seq "
                 f"{first_seq}); the records it had not sent from epoch {previous} are lost"),
        detail={"epoch": epoch, "previous_epoch": previous, "first_seq": first_seq},
    )
