"""Reliability KPIs over a time window: how fast people react and how good the alerts are."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db.models import Alert, Verdict, WorkOrder
from cloud.domain.clock import require_utc

__all__ = ["Kpis", "compute_kpis"]


@dataclass(frozen=True)
class Kpis:
    """KPIs for alerts and work orders created within [start, end). Hours; None if no data."""

    start: datetime
    end: datetime
    alerts_opened: int
    mean_time_to_acknowledge_h: float | None
    mean_time_to_resolve_alert_h: float | None
    work_orders_opened: int
    mean_time_to_respond_h: float | None
    mean_time_to_resolve_h: float | None
    sla_response_compliance: float | None
    sla_resolution_compliance: float | None
    false_alarms: int
    false_alarm_rate: float | None
    confirmed_failures: int
    mean_lead_time_h: float | None
    min_lead_time_h: float | None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600.0


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _ratio(good: int, total: int) -> float | None:
    return good / total if total else None


def compute_kpis(
    session: Session, *, start: datetime, end: datetime, asset_id: str | None = None
) -> Kpis:
    """Compute the KPIs; deadlines still running at `end` are not yet counted as met or missed."""
    start, end = require_utc(start), require_utc(end)
    alert_q = select(Alert).where(Alert.opened_at >= start, Alert.opened_at < end)
    wo_q = select(WorkOrder).where(WorkOrder.created_at >= start, WorkOrder.created_at < end)
    if asset_id is not None:
        alert_q = alert_q.where(Alert.asset_id == asset_id)
        wo_q = wo_q.where(WorkOrder.asset_id == asset_id)
    alerts = session.scalars(alert_q).all()
    orders = session.scalars(wo_q).all()

    ack = [_hours(a.acknowledged_at - a.opened_at) for a in alerts if a.acknowledged_at]
    res = [
        _hours(a.resolved_at - a.opened_at)
        for a in alerts
        if a.resolved_at is not None and a.state == "resolved"
    ]
    respond = [_hours(w.responded_at - w.created_at) for w in orders if w.responded_at]
    resolve = [_hours(w.done_at - w.created_at) for w in orders if w.done_at]

    # Response SLA: judged once responded, or once the deadline has passed without response.
    response_judged = [w for w in orders if w.responded_at is not None or w.respond_by < end]
    response_met = sum(
        1 for w in response_judged if w.responded_at is not None and w.responded_at <= w.respond_by
    )
    resolution_judged = [
        w
        for w in orders
        if w.state != "cancelled" and (w.done_at is not None or w.resolve_by < end)
    ]
    resolution_met = sum(
        1 for w in resolution_judged if w.done_at is not None and w.done_at <= w.resolve_by
    )

    alert_ids = [a.id for a in alerts]
    false_alarms = 0
    if alert_ids:
        false_alarms = int(
            session.scalar(
                select(func.count(func.distinct(Verdict.alert_id))).where(
                    Verdict.alert_id.in_(alert_ids), Verdict.verdict == "false_alarm"
                )
            )
            or 0
        )
    # Lead time: how long before the real failure the system first warned.
    leads = [
        _hours(w.failure_confirmed_at - w.alert.opened_at)
        for w in orders
        if w.failure_confirmed_at is not None and w.alert is not None
    ]
    return Kpis(
        start=start,
        end=end,
        alerts_opened=len(alerts),
        mean_time_to_acknowledge_h=_mean(ack),
        mean_time_to_resolve_alert_h=_mean(res),
        work_orders_opened=len(orders),
        mean_time_to_respond_h=_mean(respond),
        mean_time_to_resolve_h=_mean(resolve),
        sla_response_compliance=_ratio(response_met, len(response_judged)),
        sla_resolution_compliance=_ratio(resolution_met, len(resolution_judged)),
        false_alarms=false_alarms,
        false_alarm_rate=_ratio(false_alarms, len(alerts)),
        confirmed_failures=len(leads),
        mean_lead_time_h=_mean(leads),
        min_lead_time_h=min(leads) if leads else None,
    )
