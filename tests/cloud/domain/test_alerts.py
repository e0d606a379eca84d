"""Alerts: one open per (asset, failure mode), evidence history, escalation, hysteresis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypedDict

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import Alert
from cloud.domain import (
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
    acknowledge,
    clear_condition,
    resolve,
    upsert_alert,
)
from cloud.domain.alerts import EVIDENCE_EVENT_INTERVAL

from .conftest import T0


class _Condition(TypedDict):
    asset_id: str
    failure_mode: str


def raise_alert(session: Session, **overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "asset_id": "pump-1",
        "failure_mode": "imbalance",
        "severity": "warning",
        "score": 3.0,
        "evidence": {"velocity_rms_mms": 4.2},
        "model": "iforest",
        "model_version": "1.0",
        "rul_hours": None,
        "now": T0,
    }
    fields.update(overrides)
    return upsert_alert(session, **fields)


def test_first_evidence_opens_an_alert_with_history(session: Session) -> None:
    alert = raise_alert(session, rul_hours=(10.0, 20.0, 40.0), confidence=0.8, iso_zone="C")
    assert alert.state == "open"
    assert (alert.rul_low_h, alert.rul_median_h, alert.rul_high_h) == (10.0, 20.0, 40.0)
    assert [e.kind for e in alert.events] == ["opened"]
    assert alert.opened_at == T0


def test_an_open_ended_rul_is_stored_with_its_upper_bound_beyond_horizon(
    session: Session,
) -> None:
    alert = raise_alert(session, rul_hours=(10.0, 20.0, None))
    assert (alert.rul_low_h, alert.rul_median_h, alert.rul_high_h) == (10.0, 20.0, None)
    with pytest.raises(InvalidInputError):
        raise_alert(session, rul_hours=(30.0, 20.0, None))


def test_later_evidence_attaches_to_the_open_alert(session: Session) -> None:
    first = raise_alert(session)
    second = raise_alert(session, score=3.5, now=T0 + timedelta(seconds=2))
    assert second.id == first.id
    assert second.score == 3.5
    assert second.last_seen_at == T0 + timedelta(seconds=2)
    # Within the evidence interval a round updates the alert but adds no history row.
    assert [e.kind for e in second.events] == ["opened"]
    third = raise_alert(session, score=3.7, now=T0 + EVIDENCE_EVENT_INTERVAL)
    assert [e.kind for e in third.events] == ["opened", "evidence"]
    assert len(session.scalars(select(Alert)).all()) == 1


def test_other_failure_modes_and_assets_get_their_own_alerts(session: Session) -> None:
    a = raise_alert(session)
    b = raise_alert(session, failure_mode="misalignment")
    c = raise_alert(session, asset_id="fan-1")
    assert len({a.id, b.id, c.id}) == 3


def test_severity_escalates_but_never_drops_while_open(session: Session) -> None:
    raise_alert(session, severity="warning")
    up = raise_alert(session, severity="critical", now=T0 + timedelta(seconds=2))
    assert up.severity == "critical"
    assert up.events[-1].kind == "escalated"
    assert up.events[-1].details["from"] == "warning"
    down = raise_alert(session, severity="advisory", now=T0 + timedelta(seconds=4))
    assert down.severity == "critical"


def test_clearing_needs_several_rounds_and_some_time(session: Session) -> None:
    alert = raise_alert(session)
    kwargs: _Condition = {"asset_id": "pump-1", "failure_mode": "imbalance"}
    # The first good value does not clear it...
    assert clear_condition(session, now=T0 + timedelta(seconds=2), **kwargs) is alert
    assert alert.state == "open"
    clear_condition(session, now=T0 + timedelta(seconds=4), **kwargs)
    clear_condition(session, now=T0 + timedelta(seconds=6), **kwargs)
    # ...nor do three rounds in six seconds: the minimum absence has not passed.
    assert alert.state == "open"
    clear_condition(session, now=T0 + timedelta(seconds=70), **kwargs)
    assert alert.state == "cleared"
    assert alert.events[-1].kind == "cleared"
    # Nothing open any more: further good rounds are no-ops.
    assert clear_condition(session, now=T0 + timedelta(seconds=80), **kwargs) is None


def test_returning_condition_resets_the_hysteresis(session: Session) -> None:
    alert = raise_alert(session)
    kwargs: _Condition = {"asset_id": "pump-1", "failure_mode": "imbalance"}
    for s in (2, 4):
        clear_condition(session, now=T0 + timedelta(seconds=s), **kwargs)
    raise_alert(session, now=T0 + timedelta(seconds=6))
    assert alert.absent_rounds == 0
    for s in (100, 102):
        clear_condition(session, now=T0 + timedelta(seconds=s), **kwargs)
    assert alert.state == "open"


def test_a_new_alert_opens_after_clearing(session: Session) -> None:
    old = raise_alert(session)
    for s in (2, 4, 120):
        clear_condition(
            session, asset_id="pump-1", failure_mode="imbalance", now=T0 + timedelta(seconds=s)
        )
    new = raise_alert(session, now=T0 + timedelta(hours=1))
    assert new.id != old.id


def test_acknowledge_and_resolve_record_who_and_when(session: Session) -> None:
    alert = raise_alert(session)
    acknowledge(session, alert.id, actor="eve", now=T0 + timedelta(minutes=5))
    assert (alert.state, alert.acknowledged_by) == ("acknowledged", "eve")
    assert alert.acknowledged_at == T0 + timedelta(minutes=5)
    acknowledge(session, alert.id, actor="bob", now=T0 + timedelta(minutes=6))  # harmless
    assert alert.acknowledged_by == "eve"
    # Still "the" open alert: new evidence attaches to it.
    assert raise_alert(session, now=T0 + timedelta(minutes=7)).id == alert.id
    resolve(session, alert.id, actor="eve", now=T0 + timedelta(hours=1), note="rebalanced")
    assert (alert.state, alert.resolved_by, alert.resolution_note) == (
        "resolved",
        "eve",
        "rebalanced",
    )
    with pytest.raises(InvalidTransitionError):
        resolve(session, alert.id, actor="eve", now=T0 + timedelta(hours=2))
    with pytest.raises(InvalidTransitionError):
        acknowledge(session, alert.id, actor="eve", now=T0 + timedelta(hours=2))


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"severity": "apocalyptic"}, InvalidInputError),
        ({"score": float("nan")}, InvalidInputError),
        ({"rul_hours": (30.0, 20.0, 40.0)}, InvalidInputError),
        ({"confidence": 1.5}, InvalidInputError),
        ({"asset_id": "nope"}, NotFoundError),
        ({"now": T0.replace(tzinfo=None)}, InvalidInputError),
    ],
)
def test_bad_input_is_refused(session: Session, overrides: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        raise_alert(session, **overrides)


def test_unknown_alert_is_not_found(session: Session) -> None:
    with pytest.raises(NotFoundError):
        acknowledge(session, 999, actor="x", now=T0)
