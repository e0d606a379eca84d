"""/alerts: detected conditions, their history, and engineers' acknowledge/resolve/verdict."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from cloud.api.deps import ContextDep, NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import (
    CustomerReaderDep,
    EngineerDep,
    ReaderDep,
    ServiceDeskDep,
    page_of,
)
from cloud.api.routes.work_orders import work_order_public
from cloud.api.schemas import (
    AlertAction,
    AlertCommentCreate,
    AlertEventPublic,
    AlertPublic,
    AlertWorkOrderCreate,
    Page,
    VerdictCreate,
    VerdictPublic,
    WorkOrderPublic,
)
from cloud.api.schemas.common import MAX_DB_INT
from cloud.api.schemas.queries import AlertQuery, VerdictQuery
from cloud.db.models import OPEN_ALERT_STATES, Alert, AlertEvent, Verdict
from cloud.domain import alert_actions
from cloud.domain import alerts as alerts_domain
from cloud.domain import verdicts as verdicts_domain

router = APIRouter(tags=["alerts"], responses=ERROR_RESPONSES)
AlertId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


@router.get("/alerts", response_model=Page[AlertPublic])
def list_alerts(
    *, session: SessionDep, principal: CustomerReaderDep, q: Annotated[AlertQuery, Query()]
) -> Page[AlertPublic]:
    """Alerts, newest first, filtered by asset, state, severity, failure mode, time."""
    query = select(Alert).order_by(Alert.opened_at.desc(), Alert.id.desc())
    query = principal.scope.restrict(query, Alert.asset_id)
    if q.asset_id:
        query = query.where(Alert.asset_id.in_(q.asset_id))
    if q.state:
        query = query.where(Alert.state.in_(q.state))
    if q.active is not None:
        is_open = Alert.state.in_(OPEN_ALERT_STATES)
        query = query.where(is_open if q.active else ~is_open)
    if q.severity:
        query = query.where(Alert.severity.in_(q.severity))
    if q.failure_mode:
        query = query.where(Alert.failure_mode.in_(q.failure_mode))
    if q.opened_after is not None:
        query = query.where(Alert.opened_at >= q.opened_after)
    if q.opened_before is not None:
        query = query.where(Alert.opened_at < q.opened_before)
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=AlertPublic)


@router.get("/alerts/{alert_id}", response_model=AlertPublic)
def get_alert(alert_id: AlertId, session: SessionDep, principal: CustomerReaderDep) -> AlertPublic:
    """One alert."""
    return AlertPublic.model_validate(principal.scope.alert(session, alert_id))


@router.get("/alerts/{alert_id}/events", response_model=list[AlertEventPublic])
def alert_history(
    alert_id: AlertId, session: SessionDep, principal: CustomerReaderDep
) -> list[AlertEventPublic]:
    """The alert's history, oldest first."""
    principal.scope.alert(session, alert_id)
    events = session.scalars(
        select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
    )
    return [AlertEventPublic.model_validate(e) for e in events]


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertPublic)
def acknowledge_alert(
    alert_id: AlertId, session: SessionDep, now: NowDep, principal: EngineerDep
) -> AlertPublic:
    """Mark the alert as seen; repeating it changes nothing."""
    alert = alerts_domain.acknowledge(session, alert_id, actor=principal.name, now=now)
    return AlertPublic.model_validate(alert)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertPublic)
def resolve_alert(
    alert_id: AlertId,
    session: SessionDep,
    now: NowDep,
    principal: EngineerDep,
    body: AlertAction | None = None,
) -> AlertPublic:
    """Close the alert by hand, with an optional note."""
    note = body.note if body is not None else ""
    alert = alerts_domain.resolve(session, alert_id, actor=principal.name, now=now, note=note)
    return AlertPublic.model_validate(alert)


@router.post("/alerts/{alert_id}/verdict", response_model=VerdictPublic, status_code=201)
def judge_alert(
    alert_id: AlertId, body: VerdictCreate, session: SessionDep, now: NowDep, principal: EngineerDep
) -> VerdictPublic:
    """Say whether the alert was real; a false alarm also cancels its open work order."""
    verdict = verdicts_domain.record_verdict(
        session,
        alert_id,
        verdict=body.verdict,
        actor=principal.name,
        now=now,
        note=body.note,
        corrected_failure_mode=body.corrected_failure_mode,
    )
    return VerdictPublic.model_validate(verdict)


@router.post("/alerts/{alert_id}/comments", response_model=AlertEventPublic, status_code=201)
def comment_on_alert(
    alert_id: AlertId,
    body: AlertCommentCreate,
    session: SessionDep,
    now: NowDep,
    principal: ReaderDep,
) -> AlertEventPublic:
    """Add a note to the alert's history (engineers and the service desk)."""
    event = alert_actions.comment(session, alert_id, actor=principal.name, now=now, text=body.text)
    return AlertEventPublic.model_validate(event)


@router.post("/alerts/{alert_id}/work-order", response_model=WorkOrderPublic, status_code=201)
def open_work_order_for_alert(
    *,
    alert_id: AlertId,
    body: AlertWorkOrderCreate,
    session: SessionDep,
    context: ContextDep,
    now: NowDep,
    principal: ServiceDeskDep,
) -> WorkOrderPublic:
    """Open a work order by hand from the alert; 409 if one is open for its failure mode."""
    wo = alert_actions.open_work_order(
        session,
        alert_id,
        priority=body.priority,
        actor=principal.name,
        now=now,
        note=body.note,
        policy=context.policy,
        catalogue=context.catalogue,
    )
    return work_order_public(wo, now)


@router.get("/verdicts", response_model=Page[VerdictPublic])
def list_verdicts(
    session: SessionDep, _: EngineerDep, q: Annotated[VerdictQuery, Query()]
) -> Page[VerdictPublic]:
    """Verdicts, oldest first: what model retraining reads."""
    query = select(Verdict).order_by(Verdict.at, Verdict.id)
    if q.model:
        query = query.where(Verdict.model.in_(q.model))
    if q.since is not None:
        query = query.where(Verdict.at >= q.since)
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=VerdictPublic)
