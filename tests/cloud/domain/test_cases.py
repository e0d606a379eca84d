"""The fault case library: which closed work orders become cases, what a case keeps, and
which past cases are most like a new alert (and why)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import Alert, FaultCase
from cloud.domain.alerts import upsert_alert
from cloud.domain.cases import (
    case_signature,
    has_confirmed_cause,
    list_cases,
    similar_cases,
    sync_cases,
)
from cloud.domain.errors import InvalidInputError
from cloud.domain.workorders import Outcome, open_from_alert, transition

from .conftest import T0


def evidence(bpfo_z: float, kurtosis_z: float, ratio_1x: float, velocity: float) -> dict[str, Any]:
    """Evidence in the shape the scoring pipeline stores."""
    return {
        "point": "de_radial",
        "moved_features": [
            {"feature": "env_bpfo_ms2", "value": 0.6, "baseline_median": 0.05, "z": bpfo_z},
            {"feature": "kurtosis", "value": 6.0, "baseline_median": 3.0, "z": kurtosis_z},
        ],
        "velocity_rms_mms": velocity,
        "diagnosis": {"fault": "bearing_outer_race", "confidence": 0.8},
        "spectral_peaks": [{"fault": "bearing_outer_race", "ratio_1x": ratio_1x}],
    }


def alert_on(session: Session, asset: str, mode: str, ev: dict[str, Any], at_h: float) -> Alert:
    return upsert_alert(
        session,
        asset_id=asset,
        failure_mode=mode,
        severity="alarm",
        score=3.0,
        evidence=ev,
        model="m",
        model_version="1",
        rul_hours=None,
        now=T0 + timedelta(hours=at_h),
    )


def close_with_failure(session: Session, alert: Alert, at_h: float, note: str) -> int:
    """Open the alert's work order, do the job, close it with the failure confirmed."""
    wo = open_from_alert(session, alert, now=T0 + timedelta(hours=at_h))
    assert wo is not None
    at = T0 + timedelta(hours=at_h)
    transition(session, wo.id, "in_progress", actor="tech", now=at + timedelta(hours=1))
    transition(session, wo.id, "done", actor="tech", now=at + timedelta(hours=5), note=note)
    transition(
        session, wo.id, "closed", actor="desk", now=at + timedelta(hours=6),
        failure_confirmed_at=at + timedelta(hours=4), note=note,
    )  # fmt: skip
    return wo.id


def test_signature_reads_z_scores_lines_and_velocity() -> None:
    sig = case_signature(evidence(9.0, 5.0, 11.0, 2.0))
    assert sig["z:env_bpfo_ms2"] == 9.0 and sig["z:kurtosis"] == 5.0
    assert sig["line:bearing_outer_race:ratio_1x"] == pytest.approx(2.4849, abs=1e-3)  # log1p(11)
    assert sig["velocity_rms_mms"] == pytest.approx(1.0986, abs=1e-3)  # log1p(2)
    assert case_signature({}) == {} and case_signature(None) == {}
    # Junk in the evidence is skipped, not fatal.
    assert (
        case_signature({"moved_features": [1, {"feature": 3, "z": "x"}], "velocity_rms_mms": "?"})
        == {}
    )


def test_closed_with_confirmed_failure_becomes_a_case_once(session: Session) -> None:
    a = alert_on(session, "pump-1", "bearing_outer_race", evidence(9, 5, 11, 2.1), 0)
    wo_id = close_with_failure(session, a, 0, "outer race spalled, bearing replaced")
    cancelled = alert_on(session, "fan-1", "looseness", {}, 1)
    wo2 = open_from_alert(session, cancelled, now=T0 + timedelta(hours=1))
    assert wo2 is not None
    transition(session, wo2.id, "cancelled", actor="desk", now=T0 + timedelta(hours=2))
    assert not has_confirmed_cause(wo2)

    # Closing filed the case; the housekeeping's sweep finds nothing left to do.
    case = session.scalars(select(FaultCase)).one()
    assert case.work_order_id == wo_id
    assert sync_cases(session, now=T0 + timedelta(days=2)) == []
    assert (case.asset_id, case.asset_kind, case.failure_mode) == (
        "pump-1",
        "pump",
        "bearing_outer_race",
    )
    assert case.alert_id == a.id and case.evidence["velocity_rms_mms"] == 2.1
    assert case.diagnosis["fault"] == "bearing_outer_race"
    assert "spalled" in case.cause_found
    assert case.signature["z:env_bpfo_ms2"] == 9
    assert list_cases(session, text="spalled PUMP").total == 1  # every word, any case
    assert list_cases(session, text="spalled fan").total == 0
    assert list_cases(session, asset_kind="fan").total == 0
    with pytest.raises(InvalidInputError):
        list_cases(session, text="x" * 201)


def test_case_keeps_the_outcome(session: Session) -> None:
    a = alert_on(session, "pump-1", "bearing_outer_race", evidence(9, 5, 11, 2.1), 0)
    wo = open_from_alert(session, a, now=T0)
    assert wo is not None
    transition(session, wo.id, "in_progress", actor="tech", now=T0 + timedelta(hours=1))
    outcome = Outcome(
        cause_found="outer race spalled",
        action_taken="replaced the DE bearing, regreased",
        downtime_h=3.5,
        first_time_fix=True,
    )
    transition(session, wo.id, "done", actor="tech", now=T0 + timedelta(hours=4), outcome=outcome)
    assert session.scalars(select(FaultCase)).all() == []  # done, not yet closed
    transition(session, wo.id, "closed", actor="desk", now=T0 + timedelta(hours=30))
    case = session.scalars(select(FaultCase)).one()
    assert (case.cause_found, case.action_taken) == (outcome.cause_found, outcome.action_taken)
    assert (case.downtime_h, case.first_time_fix) == (3.5, True)
    assert case.closed_at == T0 + timedelta(hours=30)


def test_sweep_files_cases_of_orders_closed_another_way(session: Session) -> None:
    a = alert_on(session, "pump-1", "bearing_outer_race", evidence(9, 5, 11, 2.1), 0)
    wo = open_from_alert(session, a, now=T0)
    assert wo is not None
    # Closed by an older release, or by hand in the database: no case was filed then.
    wo.state, wo.closed_at, wo.failure_confirmed_at = "closed", T0 + timedelta(hours=9), T0
    session.flush()
    assert session.scalars(select(FaultCase)).all() == []
    made = sync_cases(session, now=T0 + timedelta(days=1))
    assert [c.work_order_id for c in made] == [wo.id]
    assert made[0].closed_at == T0 + timedelta(hours=9)
    assert sync_cases(session, now=T0 + timedelta(days=2)) == []


def test_similar_cases_same_mode_and_kind_first_then_nearest(session: Session) -> None:
    # Three past cases: pump outer race like the new alert, pump outer race far from it,
    # and a fan outer race with almost the same numbers (another kind: ranked after pumps).
    near = alert_on(session, "pump-1", "bearing_outer_race", evidence(9, 5, 11, 2.0), 0)
    close_with_failure(session, near, 0, "near")
    far = alert_on(session, "pump-1", "bearing_outer_race", evidence(3, 0, 1, 6.0), 100)
    close_with_failure(session, far, 100, "far")
    fan = alert_on(session, "fan-1", "bearing_outer_race", evidence(9, 5, 11, 2.0), 200)
    close_with_failure(session, fan, 200, "fan")
    other = alert_on(session, "pump-1", "imbalance", evidence(9, 5, 11, 2.0), 300)
    close_with_failure(session, other, 300, "other mode")
    sync_cases(session, now=T0 + timedelta(days=30))

    new = alert_on(session, "pump-1", "bearing_outer_race", evidence(8.5, 5.2, 10, 2.2), 400)
    found = similar_cases(session, new, limit=4)
    assert [s.case.cause_found for s in found] == ["near", "far", "fan", "other mode"]
    assert found[0].same_failure_mode and found[0].same_asset_kind
    assert found[0].similarity > found[1].similarity
    assert 0 < found[0].similarity <= 1 and found[0].distance < found[1].distance
    assert (found[2].same_failure_mode, found[2].same_asset_kind) == (True, False)
    assert (found[3].same_failure_mode, found[3].same_asset_kind) == (False, True)
    # An alert's own case is never suggested to it.
    assert all(s.case.alert_id != near.id for s in similar_cases(session, near, limit=10))
