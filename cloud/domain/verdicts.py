"""Verdicts: engineers say whether an alert was real; the models read them back to learn."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import OPEN_ALERT_STATES, OPEN_WORK_ORDER_STATES, Verdict, WorkOrder
from cloud.domain import alerts as alerts_domain
from cloud.domain import workorders
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidInputError
from cloud.domain.vocabulary import VerdictKind

__all__ = ["VERDICT_KINDS", "list_verdicts", "record_verdict"]

VERDICT_KINDS: tuple[VerdictKind, ...] = ("false_alarm", "confirmed", "inconclusive")


def record_verdict(
    session: Session,
    alert_id: int,
    *,
    verdict: VerdictKind,
    actor: str,
    now: datetime,
    note: str = "",
) -> Verdict:
    """Record a verdict on an alert; a false alarm also resolves it and cancels its work order."""
    now = require_utc(now)
    if verdict not in VERDICT_KINDS:
        raise InvalidInputError(f"unknown verdict {verdict!r}", details={"allowed": VERDICT_KINDS})
    alert = alerts_domain.get_alert(session, alert_id)
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
        at=now,
    )
    session.add(row)
    if verdict == "false_alarm" and alert.state in OPEN_ALERT_STATES:
        alerts_domain.resolve(session, alert.id, actor=actor, now=now, note=note or "false alarm")
    session.flush()
    return row


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
