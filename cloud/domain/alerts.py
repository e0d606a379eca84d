"""Alerts: one open alert per (asset, failure mode), evidence history, hysteresis on clearing.

Severity only rises while an alert is open: a single quieter round says little, and
a falling severity that hides a developing fault is worse than a stale high one.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db.models import OPEN_ALERT_STATES, Alert, AlertEvent, Asset
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidInputError, InvalidTransitionError, NotFoundError
from cloud.domain.outbox import enqueue_alert_event
from cloud.domain.vocabulary import SEVERITIES, IsoZone, Severity

__all__ = [
    "CLEAR_AFTER_ROUNDS",
    "CLEAR_MIN_ABSENT",
    "EVIDENCE_EVENT_INTERVAL",
    "acknowledge",
    "clear_condition",
    "find_open_alert",
    "get_alert",
    "resolve",
    "severity_rank",
    "upsert_alert",
]

# Clearing needs both: enough consecutive good rounds and enough wall time, so neither a
# fast scorer nor one long gap between rounds clears a fault that is still there.
CLEAR_AFTER_ROUNDS = 3
CLEAR_MIN_ABSENT = timedelta(seconds=60)
# Scoring runs every few seconds; one history row per round would bury the useful ones.
EVIDENCE_EVENT_INTERVAL = timedelta(minutes=10)


def severity_rank(severity: str) -> int:
    """0 for advisory .. 3 for critical."""
    try:
        return SEVERITIES.index(severity)
    except ValueError as err:
        raise InvalidInputError(
            f"unknown severity {severity!r}", details={"allowed": list(SEVERITIES)}
        ) from err


def get_alert(session: Session, alert_id: int) -> Alert:
    """The alert with this id, or NotFoundError."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError(f"alert {alert_id} not found")
    return alert


def find_open_alert(session: Session, asset_id: str, failure_mode: str) -> Alert | None:
    """The open (or acknowledged) alert for this asset and failure mode, if any."""
    return session.scalars(
        select(Alert).where(
            Alert.asset_id == asset_id,
            Alert.failure_mode == failure_mode,
            Alert.state.in_(OPEN_ALERT_STATES),
        )
    ).one_or_none()


def _event(alert: Alert, kind: str, at: datetime, **fields: Any) -> AlertEvent:
    event = AlertEvent(kind=kind, at=at, details=fields.pop("details", {}), **fields)
    alert.events.append(event)
    return event


def _last_event_at(session: Session, alert: Alert) -> datetime | None:
    if alert.id is None:
        return None
    last: datetime | None = session.scalar(
        select(func.max(AlertEvent.at)).where(AlertEvent.alert_id == alert.id)
    )
    return require_utc(last) if last is not None else None


def upsert_alert(
    session: Session,
    *,
    asset_id: str,
    failure_mode: str,
    severity: Severity,
    score: float,
    evidence: dict[str, Any],
    model: str,
    model_version: str,
    rul_hours: tuple[float, float, float | None] | None,
    now: datetime,
    confidence: float | None = None,
    iso_zone: IsoZone | None = None,
) -> Alert:
    """Open an alert, or attach new evidence to the open one for (asset, failure mode).

    `rul_hours` is (low, median, high) with high None when it lies beyond the model's
    horizon (an open-ended interval). Not committed: the caller owns the transaction.
    """
    now = require_utc(now)
    rank = severity_rank(severity)
    if not math.isfinite(score):
        raise InvalidInputError("alert score must be finite")
    if rul_hours is not None:
        low, median, high = rul_hours
        upper = median if high is None else high
        if not (0 <= low <= median <= upper) or not math.isfinite(upper):
            raise InvalidInputError(
                "rul_hours must be finite with 0 <= low <= median <= high (high may be None)"
            )
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise InvalidInputError("confidence must be within [0, 1]")
    if session.get(Asset, asset_id) is None:
        raise NotFoundError(f"asset {asset_id} not found")

    alert = find_open_alert(session, asset_id, failure_mode)
    rul = rul_hours if rul_hours is not None else (None, None, None)
    if alert is None:
        alert = Alert(
            asset_id=asset_id,
            failure_mode=failure_mode,
            severity=severity,
            state="open",
            score=score,
            confidence=confidence,
            iso_zone=iso_zone,
            evidence=evidence,
            model=model,
            model_version=model_version,
            rul_low_h=rul[0],
            rul_median_h=rul[1],
            rul_high_h=rul[2],
            opened_at=now,
            last_seen_at=now,
            absent_rounds=0,
            resolution_note="",
        )
        session.add(alert)
        _event(alert, "opened", now, severity=severity, score=score, details=evidence)
        enqueue_alert_event(session, alert, "alert.opened", now=now)
        return alert

    previous_rank = severity_rank(alert.severity)
    last_event_at = _last_event_at(session, alert)
    alert.score = score
    alert.evidence = evidence
    alert.model = model
    alert.model_version = model_version
    alert.last_seen_at = max(alert.last_seen_at, now)
    alert.absent_rounds = 0
    alert.absent_since = None
    if confidence is not None:
        alert.confidence = confidence
    if iso_zone is not None:
        alert.iso_zone = iso_zone
    if rul_hours is not None:
        alert.rul_low_h, alert.rul_median_h, alert.rul_high_h = rul_hours
    if rank > previous_rank:
        _event(
            alert,
            "escalated",
            now,
            severity=severity,
            score=score,
            details={"from": alert.severity, "to": severity, "evidence": evidence},
        )
        alert.severity = severity
    elif last_event_at is None or now - last_event_at >= EVIDENCE_EVENT_INTERVAL:
        _event(alert, "evidence", now, severity=severity, score=score, details=evidence)
    session.flush()
    return alert


def clear_condition(
    session: Session,
    *,
    asset_id: str,
    failure_mode: str,
    now: datetime,
    rounds: int = CLEAR_AFTER_ROUNDS,
    min_absent: timedelta = CLEAR_MIN_ABSENT,
) -> Alert | None:
    """Record one scoring round without the condition; clear the alert after enough of them.

    Returns the open alert (state "cleared" once hysteresis is satisfied) or None.
    """
    now = require_utc(now)
    alert = find_open_alert(session, asset_id, failure_mode)
    if alert is None:
        return None
    alert.absent_rounds += 1
    if alert.absent_since is None:
        alert.absent_since = now
    if alert.absent_rounds >= rounds and now - alert.absent_since >= min_absent:
        alert.state = "cleared"
        alert.resolved_at = now
        alert.resolved_by = "system"
        _event(
            alert,
            "cleared",
            now,
            details={"absent_rounds": alert.absent_rounds, "absent_since": str(alert.absent_since)},
        )
    session.flush()
    return alert


def acknowledge(session: Session, alert_id: int, *, actor: str, now: datetime) -> Alert:
    """Mark an open alert as seen by a person; acknowledging twice is harmless."""
    now = require_utc(now)
    alert = get_alert(session, alert_id)
    if alert.state == "acknowledged":
        return alert
    if alert.state != "open":
        raise InvalidTransitionError(
            f"alert {alert_id} is {alert.state}; only open alerts can be acknowledged",
            details={"state": alert.state},
        )
    alert.state = "acknowledged"
    alert.acknowledged_at = now
    alert.acknowledged_by = actor
    _event(alert, "acknowledged", now, actor=actor)
    session.flush()
    return alert


def resolve(session: Session, alert_id: int, *, actor: str, now: datetime, note: str = "") -> Alert:
    """Close an open or acknowledged alert by hand, saying who and why."""
    now = require_utc(now)
    alert = get_alert(session, alert_id)
    if alert.state not in OPEN_ALERT_STATES:
        raise InvalidTransitionError(
            f"alert {alert_id} is already {alert.state}", details={"state": alert.state}
        )
    if alert.acknowledged_at is None:
        # Resolving implies having looked at it; keeps time-to-acknowledge defined.
        alert.acknowledged_at = now
        alert.acknowledged_by = actor
    alert.state = "resolved"
    alert.resolved_at = now
    alert.resolved_by = actor
    alert.resolution_note = note
    _event(alert, "resolved", now, actor=actor, details={"note": note})
    session.flush()
    return alert
