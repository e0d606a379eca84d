"""Liveness and readiness: database, telemetry store, and whether scoring keeps up."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cloud.api.context import ScoringMonitor
from cloud.api.deps import ContextDep
from cloud.api.schemas import FailingAssetPublic, ScoringHealthPublic

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Service health; 503 when the database does not answer.

    `degraded` with `reasons` also when scoring fails for some asset or lags. Absent
    fields: `scoring` where this process does not score (an API-only process), `reasons`
    when there are none.
    """

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    telemetry: Literal["attached", "absent"]
    scoring: ScoringHealthPublic | None = None
    reasons: list[str] | None = None


def scoring_health(monitor: ScoringMonitor) -> ScoringHealthPublic:
    status = monitor.status()
    return ScoringHealthPublic(
        status=status.status,
        reasons=status.reasons,
        last_round_at=status.last_round_at,
        interval_s=status.interval_s,
        rounds_failed=status.rounds_failed,
        failures_total=status.failures_total,
        failing_assets=[
            FailingAssetPublic(
                asset_id=asset_id, stage=f.stage, error=f.error, since=f.since,
                last_at=f.last_at, rounds=f.rounds,
            )
            for asset_id, f in sorted(status.failing.items())
        ],
    )


@router.get(
    "/health",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health}},
)
def health(context: ContextDep) -> Health | JSONResponse:
    """No authentication: load balancers and the demo poll it."""
    database: Literal["ok", "unreachable"] = "ok"
    reasons: list[str] = []
    try:
        with context.session_factory() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        database = "unreachable"
        reasons.append("database unreachable")
    scoring = scoring_health(context.scoring) if context.scoring is not None else None
    if scoring is not None:
        reasons += scoring.reasons
    body = Health(
        status="ok" if not reasons else "degraded",
        database=database,
        telemetry="attached" if context.telemetry is not None else "absent",
        scoring=scoring,
        reasons=reasons or None,
    )
    if database != "ok":
        return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=503)
    return body
