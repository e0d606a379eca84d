"""Verdicts: engineers say whether an alert was real; the models read them back to learn.

Each verdict is also an entry ("verdict") in the alert's history saying what it changed:
the alert resolved, its work order cancelled, the feedback recorded for the models.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import (
    OPEN_ALERT_STATES,
    OPEN_WORK_ORDER_STATES,
    Alert,
    AlertEvent,
    Verdict,
    WorkOrder,
)
from cloud.domain import alerts as alerts_domain
from cloud.domain import workorders
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidInputError
from cloud.domain.vocabulary import VerdictKind

__all__ = ["FAILURE_MODE_PATTERN", "VERDICT_KINDS", "list_verdicts", "record_verdict"]

VERDICT_KINDS: tuple[VerdictKind, ...] = ("false_alarm", "confirmed", "inconclusive")
# A failure-mode key as the catalogue writes them: bearing_outer_race, imbalance, ...
FAILURE_MODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


def _correction(value: str | None, current: str) -> str | None:
    if value is None or not value.strip() or value.strip() == current:
        return None
    value = value.strip()
    if not re.fullmatch(FAILURE_MODE_PATTERN, value):
        raise InvalidInputError(
            f"corrected failure mode {value!r} is not a failure-mode key "
            "(lower case letters, digits and _, e.g. bearing_inner_race)"
        )
    return value


def record_verdict(
    session: Session,
    alert_id: int,
    *,
    verdict: VerdictKind,
    actor: str,
    now: datetime,
    note: str = "",
    corrected_failure_mode: str | None = None,
) -> Verdict:
    """Record a verdict on an alert; a false alarm also resolves it and cancels its work order.

    `corrected_failure_mode` is the failure mode the engineer found instead of the alert's
    (kept on the verdict for the models; the alert keeps what the models said).
    """
    now = require_utc(now)
    if verdict not in VERDICT_KINDS:
        raise InvalidInputError(f"unknown verdict {verdict!r}", details={"allowed": VERDICT_KINDS})
    alert = alerts_domain.get_alert(session, alert_id)
    correction = _correction(corrected_failure_mode, alert.failure_mode)
    was_open = alert.state in OPEN_ALERT_STATES
    if verdict == "false_alarm":
        wo = session.scalars(
            select(WorkOrder).where(
                WorkOrder.alert_id == alert.id, WorkOrder.state.in_(OPEN_WORK_ORDER_STATES)
            )
        ).one_or_none()
        if wo is not None:
            # Cancelling records the verdict and resolves the alert in one place.
            workorders.transition(
                session, wo.id, "cancelled", actor=actor, now=now, note=note, false_alarm=True
            )
            found = session.scalars(
                select(Verdict)
                .where(Verdict.work_order_id == wo.id, Verdict.verdict == "false_alarm")
                .order_by(Verdict.id.desc())
            ).first()
            assert found is not None
            found.corrected_failure_mode = correction
            _history(alert, found, now, was_open=was_open, cancelled=wo.id)
            session.flush()
            return found
    row = Verdict(
        alert_id=alert.id,
        work_order_id=None,
        asset_id=alert.asset_id,
        failure_mode=alert.failure_mode,
        verdict=verdict,
        model=alert.model,
        model_version=alert.model_version,
        actor=actor,
        note=note,
        corrected_failure_mode=correction,
        at=now,
    )
    session.add(row)
    if verdict == "false_alarm" and alert.state in OPEN_ALERT_STATES:
        alerts_domain.resolve(session, alert.id, actor=actor, now=now, note=note or "false alarm")
    session.flush()
    _history(alert, row, now, was_open=was_open, cancelled=None)
    session.flush()
    return row


def _history(
    alert: Alert, verdict: Verdict, now: datetime, *, was_open: bool, cancelled: int | None
) -> None:
    """The verdict in the alert's history, with what it changed."""
    resolved = was_open and alert.state not in OPEN_ALERT_STATES
    details: dict[str, Any] = {
        "verdict_id": verdict.id,
        "verdict": verdict.verdict,
        "note": verdict.note,
        "corrected_failure_mode": verdict.corrected_failure_mode,
        "alert_resolved": resolved,
        "work_order_cancelled": cancelled,
        # Every verdict is read back by the scoring pipeline (cloud.pipeline) as feedback.
        "model_feedback": True,
    }
    alert.events.append(AlertEvent(kind="verdict", at=now, actor=verdict.actor, details=details))


def list_verdicts(
    session: Session, *, since: datetime | None = None, model: str | None = None
) -> list[Verdict]:
    """Verdicts for model training, oldest first."""
    query = select(Verdict).order_by(Verdict.at, Verdict.id)
    if since is not None:
        query = query.where(Verdict.at >= require_utc(since))
    if model is not None:
        query = query.where(Verdict.model == model)
    return list(session.scalars(query))
