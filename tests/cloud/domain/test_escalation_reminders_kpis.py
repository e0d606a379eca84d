"""Escalation of missed deadlines, running-hours reminders, and the KPIs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import Escalation, WorkOrder
from cloud.domain import (
    InvalidInputError,
    InvalidTransitionError,
    acknowledge,
    open_from_alert,
    open_manual,
    resolve,
    transition,
    upsert_alert,
)
from cloud.domain.escalation import acknowledge_escalation, check_escalations
from cloud.domain.kpis import compute_kpis
from cloud.domain.policy import EscalationLevel, ServiceLevelPolicy
from cloud.domain.reminders import add_running_hours, check_maintenance_plans, create_plan
from cloud.domain.verdicts import record_verdict

from .conftest import T0

# The ladder with one level at the deadline: escalation as it was before warnings and managers
# (the full ladder is tested in test_escalation_ladder.py).
DEADLINE_ONLY = ServiceLevelPolicy(
    escalation_levels=(EscalationLevel(name="supervisor", at_fraction=1.0),)
)


def test_overdue_response_and_resolution_escalate_once(session: Session) -> None:
    wo = open_manual(
        session, asset_id="fan-1", failure_mode="imbalance", priority="P1", actor="d", now=T0
    )
    # standard tier: P1 responds in 4 h, resolves in 48 h.
    assert check_escalations(session, T0 + timedelta(hours=3), policy=DEADLINE_ONLY) == []
    raised = check_escalations(session, T0 + timedelta(hours=5), policy=DEADLINE_ONLY)
    assert [e.kind for e in raised] == ["response"]
    # idempotent
    assert check_escalations(session, T0 + timedelta(hours=6), policy=DEADLINE_ONLY) == []
    transition(session, wo.id, "assigned", actor="d", now=T0 + timedelta(hours=6), assignee="a")
    raised = check_escalations(session, T0 + timedelta(hours=49), policy=DEADLINE_ONLY)
    assert [e.kind for e in raised] == ["resolution"]
    assert check_escalations(session, T0 + timedelta(hours=50), policy=DEADLINE_ONLY) == []
    kinds = sorted(session.scalars(select(Escalation.kind)).all())
    assert kinds == ["resolution", "response"]
    assert [e.kind for e in wo.events].count("escalated") == 2


def test_responding_in_time_prevents_the_response_escalation(session: Session) -> None:
    wo = open_manual(
        session, asset_id="fan-1", failure_mode="imbalance", priority="P1", actor="d", now=T0
    )
    transition(session, wo.id, "in_progress", actor="d", now=T0 + timedelta(hours=1))
    transition(session, wo.id, "done", actor="d", now=T0 + timedelta(hours=2))
    assert check_escalations(session, T0 + timedelta(days=10), policy=DEADLINE_ONLY) == []


def test_escalations_can_be_acknowledged_once(session: Session) -> None:
    open_manual(
        session, asset_id="fan-1", failure_mode="imbalance", priority="P0", actor="d", now=T0
    )
    (escalation,) = check_escalations(session, T0 + timedelta(hours=3), policy=DEADLINE_ONLY)
    acknowledge_escalation(session, escalation.id, actor="lead", now=T0 + timedelta(hours=4))
    assert escalation.acknowledged_by == "lead"
    with pytest.raises(InvalidTransitionError):
        acknowledge_escalation(session, escalation.id, actor="lead", now=T0)


def test_running_hours_reminder_opens_one_p3_per_interval(session: Session) -> None:
    plan = create_plan(session, asset_id="pump-1", interval_hours=500, now=T0)
    add_running_hours(session, "pump-1", 499)
    assert check_maintenance_plans(session, T0) == []
    add_running_hours(session, "pump-1", 2)
    (wo,) = check_maintenance_plans(session, T0)
    assert (wo.priority, wo.source, wo.failure_mode) == ("P3", "reminder", "scheduled_service")
    assert wo.respond_by == T0 + timedelta(hours=1)  # strategic tier still tightens it
    assert plan.last_done_hours == 500
    assert check_maintenance_plans(session, T0) == []  # idempotent
    add_running_hours(session, "pump-1", 600)  # 1101 h: due again, but the job is still open
    assert check_maintenance_plans(session, T0) == []
    transition(session, wo.id, "in_progress", actor="d", now=T0)
    transition(session, wo.id, "done", actor="d", now=T0)
    (second,) = check_maintenance_plans(session, T0 + timedelta(days=1))
    assert plan.last_done_hours == 1000
    assert second.id != wo.id
    with pytest.raises(InvalidInputError):
        add_running_hours(session, "pump-1", -1)


def test_kpis(session: Session) -> None:
    def raise_(asset: str, mode: str, at_h: float):  # type: ignore[no-untyped-def]
        return upsert_alert(
            session,
            asset_id=asset,
            failure_mode=mode,
            severity="alarm",
            score=5,
            evidence={},
            model="m",
            model_version="1",
            rul_hours=None,
            now=T0 + timedelta(hours=at_h),
        )

    a1 = raise_("pump-1", "imbalance", 0)
    a2 = raise_("fan-1", "looseness", 0)
    a3 = raise_("motor-2", "overheating", 0)
    acknowledge(session, a1.id, actor="e", now=T0 + timedelta(hours=1))
    acknowledge(session, a2.id, actor="e", now=T0 + timedelta(hours=3))
    resolve(session, a2.id, actor="e", now=T0 + timedelta(hours=4))
    wo1 = open_from_alert(session, a1, now=T0)
    wo3 = open_from_alert(session, a3, now=T0)
    assert wo1 is not None and wo3 is not None
    # wo1: strategic, respond by 1 h → responds at 0.5 h; done at 10 h (< 48 h): both met.
    transition(session, wo1.id, "in_progress", actor="d", now=T0 + timedelta(hours=0.5))
    transition(session, wo1.id, "done", actor="d", now=T0 + timedelta(hours=10))
    transition(
        session,
        wo1.id,
        "closed",
        actor="d",
        now=T0 + timedelta(hours=11),
        failure_confirmed_at=T0 + timedelta(hours=30),
    )
    # wo3: key tier, respond by 4 h → responds at 6 h: missed; still open at the end.
    transition(session, wo3.id, "assigned", actor="d", now=T0 + timedelta(hours=6), assignee="x")
    record_verdict(session, a3.id, verdict="false_alarm", actor="e", now=T0 + timedelta(hours=7))

    kpis = compute_kpis(session, start=T0, end=T0 + timedelta(hours=24))
    assert kpis.alerts_opened == 3
    assert kpis.mean_time_to_acknowledge_h == pytest.approx((1 + 3 + 7) / 3)
    assert kpis.work_orders_opened == 2
    assert kpis.mean_time_to_respond_h == pytest.approx((0.5 + 6) / 2)
    assert kpis.sla_response_compliance == pytest.approx(0.5)
    assert kpis.sla_resolution_compliance == pytest.approx(1.0)  # wo3 cancelled, not judged
    assert kpis.false_alarms == 1
    assert kpis.false_alarm_rate == pytest.approx(1 / 3)
    assert kpis.confirmed_failures == 1
    assert kpis.mean_lead_time_h == pytest.approx(30.0)
    only_fan = compute_kpis(session, start=T0, end=T0 + timedelta(hours=24), asset_id="fan-1")
    assert (only_fan.alerts_opened, only_fan.work_orders_opened) == (1, 0)
    empty = compute_kpis(session, start=T0 - timedelta(days=9), end=T0 - timedelta(days=8))
    assert empty.alerts_opened == 0 and empty.false_alarm_rate is None
    assert session.scalars(select(WorkOrder)).all()


def test_housekeeping_runs_both_checks_idempotently(session: Session) -> None:
    from cloud.domain import run_housekeeping

    open_manual(
        session, asset_id="fan-1", failure_mode="imbalance", priority="P0", actor="d", now=T0
    )
    create_plan(session, asset_id="fan-1", interval_hours=100, now=T0)
    add_running_hours(session, "fan-1", 150)
    first = run_housekeeping(session, T0 + timedelta(hours=3), policy=DEADLINE_ONLY)
    assert [e.kind for e in first.escalations] == ["response"]
    assert [w.source for w in first.reminders] == ["reminder"]
    second = run_housekeeping(session, T0 + timedelta(hours=3, minutes=1), policy=DEADLINE_ONLY)
    assert (second.escalations, second.reminders) == ([], [])


def test_settings_file_webhook_is_kept_as_the_legacy_subscription(session: Session) -> None:
    from cloud.db import WebhookDelivery, WebhookSubscription
    from cloud.domain.subscriptions import sync_legacy_subscription

    # A delivery written before subscriptions existed, and no webhook configured: skipped.
    session.add(WebhookDelivery(event="work_order.created", body="{}", state="pending",
                                created_at=T0, next_attempt_at=T0))
    assert sync_legacy_subscription(session, url=None, secret=None, now=T0) is None
    assert session.scalars(select(WebhookDelivery.state)).all() == ["skipped"]
    # Configured later: a subscription to every event, from now on; updated, then turned off.
    secret = "Wh-" + "s3cr" * 5
    legacy = sync_legacy_subscription(session, url="http://desk/hooks", secret=secret, now=T0)
    assert legacy is not None and (legacy.legacy, legacy.events, legacy.active) == (
        True, ["*"], True)
    again = sync_legacy_subscription(session, url="http://desk/v2", secret=secret, now=T0)
    assert again is not None and again.id == legacy.id and again.url == "http://desk/v2"
    sync_legacy_subscription(session, url=None, secret=None, now=T0)
    assert legacy.active is False
    assert len(session.scalars(select(WebhookSubscription).where(
        WebhookSubscription.legacy.is_(True))).all()) == 1


def test_one_check_raises_at_most_max_raised_and_the_next_goes_on(session: Session) -> None:
    for asset in ("fan-1", "pump-1", "motor-2"):
        open_manual(session, asset_id=asset, failure_mode="imbalance", priority="P1",
                    actor="d", now=T0)
    late = T0 + timedelta(days=5)  # every level of both deadlines is due: 3 × 6
    first = check_escalations(session, late, max_raised=10)
    assert len(first) == 10
    rest = check_escalations(session, late, max_raised=10)
    assert len(rest) == 8
    assert check_escalations(session, late) == []
    assert len({(e.work_order_id, e.kind, e.level) for e in first + rest}) == 18
