"""/kpis: reaction times, SLA compliance (overall, by priority, by tier), false alarms,
first-time fixes, lead time, availability and satisfaction; one period or a series."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api.deps import NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES, api_error
from cloud.api.routes._common import ReaderDep
from cloud.api.schemas import KpiSeriesPublic, KpisPublic
from cloud.api.schemas.queries import KpiQuery, KpiSeriesQuery
from cloud.domain.kpis import KpiScope, compute_kpis, kpi_series

router = APIRouter(tags=["kpis"], responses=ERROR_RESPONSES)
DEFAULT_WINDOW = timedelta(days=30)
DEFAULT_SERIES_WINDOW = timedelta(days=365)


def _range(q: KpiQuery, now: datetime, window: timedelta) -> tuple[datetime, datetime]:
    stop = q.end or now
    begin = q.start or stop - window
    if begin >= stop:
        raise api_error(422, "start must be before end")
    return begin, stop


def _scope(q: KpiQuery) -> KpiScope:
    return KpiScope(
        customer_id=q.customer_id, site_id=q.site_id, asset_kind=q.asset_kind, asset_id=q.asset_id
    )


@router.get("/kpis", response_model=KpisPublic)
def kpis(
    session: SessionDep, now: NowDep, _: ReaderDep, q: Annotated[KpiQuery, Query()]
) -> KpisPublic:
    """KPIs of alerts and work orders created in [start, end); default: the last 30 days.
    Deadlines still running now are not yet counted as met or missed."""
    begin, stop = _range(q, now, DEFAULT_WINDOW)
    result = compute_kpis(session, start=begin, end=stop, scope=_scope(q), now=min(now, stop))
    return KpisPublic.model_validate(result.as_dict())


@router.get("/kpis/series", response_model=KpiSeriesPublic)
def kpis_series(
    session: SessionDep, now: NowDep, _: ReaderDep, q: Annotated[KpiSeriesQuery, Query()]
) -> KpiSeriesPublic:
    """The same KPIs per week (Monday 00:00 UTC) or calendar month; default: the last year
    by month. At most 160 buckets (422 beyond)."""
    begin, stop = _range(q, now, DEFAULT_SERIES_WINDOW)
    series = kpi_series(
        session, start=begin, end=stop, bucket=q.bucket, scope=_scope(q), now=min(now, stop)
    )
    return KpiSeriesPublic.model_validate(
        {
            "start": begin,
            "end": stop,
            "bucket": q.bucket,
            "buckets": [k.as_dict() for k in series],
        }
    )
