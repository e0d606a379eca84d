"""Work orders: opening from alerts, the state machine, verdicts, edits and the outbox."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import Alert, Verdict, WebhookDelivery, WorkOrder
from cloud.domain import (
    ConflictError,
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
    open_from_alert,
    open_manual,
    transition,
    update_work_order,
    upsert_alert,
)
from cloud.domain.verdicts import record_verdict
from cloud.domain.workorders import TRANSITIONS

from .conftest import T0


def alert(session: Session, **overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "asset_id": "pump-1",
        "failure_mode": "bearing_outer_race",
        "severity": "alarm",
        "score": 6.0,
        "evidence": {"bpfo_amplitude_ms2": 2.0},
        "model": "envelope",
        "model_version": "2.0",
        "rul_hours": (200.0, 400.0, 800.0),
        "now": T0,
        "confidence": 0.9,
    }
    fields.update(overrides)
    return upsert_alert(session, **fields)


def deliveries(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    return [json.loads(r.body) for r in rows]


def test_open_from_alert_fills_priority_deadlines_and_catalogue(session: Session) -> None:
    wo = open_from_alert(session, alert(session), now=T0)
    assert wo is not None
    assert wo.priority == "P1"
    assert wo.respond_by == T0 + timedelta(hours=1)  # strategic customer
    assert wo.resolve_by == T0 + timedelta(hours=48)
    # Lead time 48 h before the earlier of failure (200 h) and the deadline (48 h): now.
    assert wo.planned_for == T0
    assert wo.failure_mode_code == "VIB"
    assert any("envelope" in a for a in wo.suggested_actions)
    assert wo.spare_parts
    assert wo.source == "alert"
    assert [e.kind for e in wo.events] == ["created"]
    assert [d["event"] for d in deliveries(session)] == ["work_order.created"]


def test_open_from_alert_is_idempotent_and_reprioritises(session: Session) -> None:
    a = alert(session, severity="warning", rul_hours=None)
    first = open_from_alert(session, a, now=T0)
    assert first is not None and first.priority == "P2"
    again = open_from_alert(session, a, now=T0 + timedelta(minutes=1))
    assert again is first
    worse = alert(session, severity="critical", now=T0 + timedelta(minutes=2))
    bumped = open_from_alert(session, worse, now=T0 + timedelta(minutes=2))
    assert bumped is first
    assert bumped.priority == "P0"
    assert bumped.resolve_by == T0 + timedelta(minutes=2, hours=24)
    assert [e.kind for e in bumped.events] == ["created", "reprioritised"]
    assert len(session.scalars(select(WorkOrder)).all()) == 1
    assert [d["event"] for d in deliveries(session)] == [
        "work_order.created",
        "work_order.updated",
    ]


def test_advisory_without_urgency_opens_no_work_order(session: Session) -> None:
    a = alert(session, severity="advisory", rul_hours=None)
    assert open_from_alert(session, a, now=T0) is None


HAPPY_PATH = ["assigned", "in_progress", "done", "closed"]


def test_happy_path_records_history_and_times(session: Session) -> None:
    wo = open_from_alert(session, alert(session), now=T0)
    assert wo is not None
    times = [T0 + timedelta(hours=h) for h in (0.5, 1, 10, 11)]
    for state, at in zip(HAPPY_PATH, times, strict=True):
        transition(session, wo.id, state, actor="desk", now=at, assignee="ana")  # type: ignore[arg-type]
    assert wo.state == "closed"
    assert wo.responded_at == times[0]
    assert wo.done_at == times[2]
    assert wo.closed_at == times[3]
    assert [(e.from_state, e.to_state) for e in wo.events[1:]] == [
        ("open", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "done"),
        ("done", "closed"),
    ]
    assert wo.alert is not None and wo.alert.state == "resolved"
    assert len(deliveries(session)) == 5


ALL_STATES = ["open", "assigned", "in_progress", "done", "closed", "cancelled"]
PATH_TO = {
    "open": [],
    "assigned": ["assigned"],
    "in_progress": ["in_progress"],
    "done": ["in_progress", "done"],
    "closed": ["in_progress", "done", "closed"],
    "cancelled": ["cancelled"],
}


@pytest.mark.parametrize("start", ALL_STATES)
@pytest.mark.parametrize("target", ALL_STATES)
def test_state_machine(session: Session, start: str, target: str) -> None:
    wo = open_manual(
        session, asset_id="fan-1", failure_mode="looseness", priority="P2", actor="d", now=T0
    )
    for step in PATH_TO[start]:
        transition(session, wo.id, step, actor="d", now=T0, assignee="ana")  # type: ignore[arg-type]
    if target in TRANSITIONS[start]:
        transition(session, wo.id, target, actor="d", now=T0, assignee="ana")  # type: ignore[arg-type]
        assert wo.state == target
    else:
        with pytest.raises(InvalidTransitionError) as err:
            transition(session, wo.id, target, actor="d", now=T0, assignee="ana")  # type: ignore[arg-type]
        assert err.value.details["from"] == start
        assert wo.state == start


def test_cancel_as_false_alarm_records_a_verdict_for_the_models(session: Session) -> None:
    a = alert(session)
    wo = open_from_alert(session, a, now=T0)
    assert wo is not None
    transition(
        session, wo.id, "cancelled", actor="desk", now=T0, false_alarm=True, note="sensor loose"
    )
    verdict = session.scalars(select(Verdict)).one()
    assert (verdict.verdict, verdict.model, verdict.model_version) == (
        "false_alarm",
        "envelope",
        "2.0",
    )
    assert verdict.alert_id == a.id
    assert a.state == "resolved"


def test_engineer_verdict_false_alarm_cancels_the_open_work_order(session: Session) -> None:
    a = alert(session)
    wo = open_from_alert(session, a, now=T0)
    assert wo is not None
    verdict = record_verdict(session, a.id, verdict="false_alarm", actor="eng", now=T0)
    assert verdict.work_order_id == wo.id
    assert wo.state == "cancelled"
    assert a.state == "resolved"
    confirmed = record_verdict(session, a.id, verdict="confirmed", actor="eng", now=T0)
    assert confirmed.verdict == "confirmed"


def test_flags_only_apply_to_their_transition(session: Session) -> None:
    wo = open_manual(
        session, asset_id="fan-1", failure_mode="looseness", priority="P2", actor="d", now=T0
    )
    with pytest.raises(InvalidInputError):
        transition(session, wo.id, "in_progress", actor="d", now=T0, false_alarm=True)
    with pytest.raises(InvalidInputError):
        transition(session, wo.id, "in_progress", actor="d", now=T0, failure_confirmed_at=T0)
    with pytest.raises(InvalidInputError):
        transition(session, wo.id, "assigned", actor="d", now=T0)  # nobody to assign to


def test_one_open_work_order_per_asset_and_failure_mode(session: Session) -> None:
    open_manual(
        session, asset_id="fan-1", failure_mode="looseness", priority="P2", actor="d", now=T0
    )
    with pytest.raises(ConflictError):
        open_manual(
            session, asset_id="fan-1", failure_mode="looseness", priority="P1", actor="d", now=T0
        )
    other = open_manual(
        session, asset_id="fan-1", failure_mode="imbalance", priority="P1", actor="d", now=T0
    )
    assert other.priority == "P1"
    with pytest.raises(NotFoundError):
        open_manual(session, asset_id="nope", failure_mode="x", priority="P1", actor="d", now=T0)


def test_edits_are_recorded_and_priority_rederives_deadlines(session: Session) -> None:
    wo = open_manual(
        session, asset_id="motor-2", failure_mode="overheating", priority="P3", actor="d", now=T0
    )
    assert wo.respond_by == T0 + timedelta(hours=4)  # key tier beats P3's 12 h
    update_work_order(
        session,
        wo.id,
        actor="desk",
        now=T0 + timedelta(hours=1),
        changes={"priority": "P0", "assignee": "ana", "title": "Hot motor"},
    )
    assert (wo.priority, wo.assignee, wo.title) == ("P0", "ana", "Hot motor")
    assert wo.respond_by == T0 + timedelta(hours=2)
    assert wo.resolve_by == T0 + timedelta(hours=24)
    assert wo.events[-1].kind == "edited"
    with pytest.raises(InvalidInputError):
        update_work_order(session, wo.id, actor="d", now=T0, changes={"state": "done"})
    transition(session, wo.id, "cancelled", actor="d", now=T0)
    with pytest.raises(InvalidTransitionError):
        update_work_order(session, wo.id, actor="d", now=T0, changes={"title": "x"})


def test_webhook_body_describes_the_change(session: Session) -> None:
    wo = open_manual(
        session, asset_id="fan-1", failure_mode="looseness", priority="P2", actor="d", now=T0
    )
    transition(session, wo.id, "assigned", actor="desk", now=T0, assignee="ana")
    created, updated = deliveries(session)
    assert created["work_order"]["id"] == wo.id
    assert updated["change"]["state"] == ["open", "assigned"]
    assert updated["work_order"]["assignee"] == "ana"
    assert updated["occurred_at"].endswith("Z")


def test_a_closer_failure_forecast_moves_the_planned_date_earlier_never_later(
    session: Session,
) -> None:
    # Opened at P1 with a distant forecast: planned lead time before the 48 h deadline.
    first = open_from_alert(session, alert(session, rul_hours=(400.0, 600.0, 900.0)), now=T0)
    assert first is not None and first.priority == "P1"
    assert first.planned_for == T0  # 48 h lead time before the 48 h deadline: now
    later = T0 + timedelta(hours=1)
    # Same priority, forecast unchanged in effect: nothing to re-plan.
    open_from_alert(session, alert(session, rul_hours=(300.0, 500.0, 800.0), now=later), now=later)
    assert [e.kind for e in first.events] == ["created"]


def test_escalation_to_p0_replans_before_the_predicted_failure(session: Session) -> None:
    a = alert(session, severity="warning", rul_hours=None, confidence=0.9)
    wo = open_from_alert(session, a, now=T0)
    assert wo is not None and wo.priority == "P2"
    planned_before = wo.planned_for
    assert planned_before is not None and planned_before > T0 + timedelta(hours=1)
    # The forecast now says failure within 30 min (lower bound): plan right away.
    soon = T0 + timedelta(minutes=5)
    worse = alert(session, severity="critical", rul_hours=(0.5, 0.7, 1.0), now=soon)
    bumped = open_from_alert(session, worse, now=soon)
    assert bumped is wo and wo.priority == "P0"
    assert wo.planned_for == soon  # not after the predicted failure
    assert wo.planned_for <= soon + timedelta(hours=0.5)
    assert [e.kind for e in wo.events] == ["created", "reprioritised"]
    assert "planned_for" in wo.events[-1].details


def test_same_priority_closer_forecast_replans(session: Session) -> None:
    # Looseness: 12 h lead time. P0 in zone D: resolve within 24 h, so planned at +12 h.
    a = alert(
        session,
        failure_mode="looseness",
        severity="critical",
        rul_hours=None,
        confidence=0.9,
        iso_zone="D",
    )
    wo = open_from_alert(session, a, now=T0)
    assert wo is not None and wo.priority == "P0"
    assert wo.planned_for == T0 + timedelta(hours=12)
    later = T0 + timedelta(minutes=10)
    # Failure now expected within 14 h at the earliest: start 12 h before, i.e. at +2 h 10 min.
    again = alert(
        session,
        failure_mode="looseness",
        severity="critical",
        rul_hours=(14.0, 20.0, 30.0),
        now=later,
        iso_zone="D",
    )
    open_from_alert(session, again, now=later)
    assert wo.planned_for == later + timedelta(hours=2)
    assert [e.kind for e in wo.events] == ["created", "replanned"]
    # A more relaxed forecast afterwards does not push the agreed date out again.
    relaxed = alert(
        session,
        failure_mode="looseness",
        severity="critical",
        rul_hours=(40.0, 60.0, 90.0),
        now=later + timedelta(minutes=5),
        iso_zone="D",
    )
    open_from_alert(session, relaxed, now=later + timedelta(minutes=5))
    assert wo.planned_for == later + timedelta(hours=2)
    assert [e.kind for e in wo.events] == ["created", "replanned"]
