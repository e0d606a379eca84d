"""Liveness and readiness: is the database reachable, is a telemetry store attached."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cloud.api.deps import ContextDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Service health; 503 when the database does not answer."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    telemetry: Literal["attached", "absent"]


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(context: ContextDep) -> Health | JSONResponse:
    """No authentication: load balancers and the demo poll it."""
    database: Literal["ok", "unreachable"] = "ok"
    try:
        with context.session_factory() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        database = "unreachable"
    body = Health(
        status="ok" if database == "ok" else "degraded",
        database=database,
        telemetry="attached" if context.telemetry is not None else "absent",
    )
    if database != "ok":
        return JSONResponse(body.model_dump(), status_code=503)
    return body
