"""/kpis: reaction times, SLA compliance, false alarms and lead time."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api.deps import NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES, api_error
from cloud.api.routes._common import ReaderDep
from cloud.api.schemas import KpisPublic
from cloud.api.schemas.queries import KpiQuery
from cloud.domain.kpis import compute_kpis

router = APIRouter(tags=["kpis"], responses=ERROR_RESPONSES)
DEFAULT_WINDOW = timedelta(days=30)


@router.get("/kpis", response_model=KpisPublic)
def kpis(
    session: SessionDep, now: NowDep, _: ReaderDep, q: Annotated[KpiQuery, Query()]
) -> KpisPublic:
    """KPIs of alerts and work orders created in [start, end); default: the last 30 days."""
    stop = q.end or now
    begin = q.start or stop - DEFAULT_WINDOW
    if begin >= stop:
        raise api_error(422, "start must be before end")
    return KpisPublic.model_validate(
        compute_kpis(session, start=begin, end=stop, asset_id=q.asset_id).as_dict()
    )
