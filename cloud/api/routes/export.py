"""/export/*.csv and /search: any list as a CSV download with its filters, and search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from cloud.api.csv_response import (
    csv_filename,
    list_csv_response,
    params_of,
    search_csv_response,
)
from cloud.api.deps import ContextDep, NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import ReaderDep
from cloud.api.schemas.queries import (
    AlertExportQuery,
    AssetExportQuery,
    SearchQuery,
    WorkOrderExportQuery,
)
from cloud.api.schemas.search import SearchResultsPublic
from cloud.domain import listing
from cloud.domain.search import search

router = APIRouter(tags=["export and search"], responses=ERROR_RESPONSES)
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}},
        "description": "UTF-8 CSV with a byte-order mark; every matching row, streamed",
    }
}


def _export(context: ContextDep, now: NowDep, spec: listing.ListSpec, q: BaseModel) -> Any:
    # Checked before the first byte is sent: a bad filter is a 422, not a broken download.
    query = listing.parse_query(spec, params_of(q))
    return list_csv_response(context.session_factory, spec, query, csv_filename(spec.name, now))


@router.get("/export/alerts.csv", responses=CSV_RESPONSE, response_model=None)
def export_alerts(
    context: ContextDep, now: NowDep, _: ReaderDep, q: Annotated[AlertExportQuery, Query()]
) -> Any:
    """Alerts matching the filters (as on GET /alerts, several values per filter) as CSV."""
    return _export(context, now, listing.ALERTS, q)


@router.get("/export/work-orders.csv", responses=CSV_RESPONSE, response_model=None)
def export_work_orders(
    context: ContextDep, now: NowDep, _: ReaderDep, q: Annotated[WorkOrderExportQuery, Query()]
) -> Any:
    """Work orders matching the filters as CSV."""
    return _export(context, now, listing.WORK_ORDERS, q)


@router.get("/export/assets.csv", responses=CSV_RESPONSE, response_model=None)
def export_assets(
    context: ContextDep, now: NowDep, _: ReaderDep, q: Annotated[AssetExportQuery, Query()]
) -> Any:
    """Assets matching the filters as CSV."""
    return _export(context, now, listing.ASSETS, q)


@router.get("/search", response_model=SearchResultsPublic)
def search_everything(
    session: SessionDep, _: ReaderDep, q: Annotated[SearchQuery, Query()]
) -> SearchResultsPublic:
    """Assets, alerts and work orders matching every word of `q` (substring, any case)."""
    return SearchResultsPublic.of(search(session, q.q, limit=q.limit))


@router.get("/export/search.csv", responses=CSV_RESPONSE, response_model=None)
def export_search(
    session: SessionDep, now: NowDep, _: ReaderDep, q: Annotated[SearchQuery, Query()]
) -> Any:
    """Search hits as CSV: kind, id, title, detail, asset, alert, time."""
    return search_csv_response(search(session, q.q, limit=q.limit), csv_filename("search", now))
