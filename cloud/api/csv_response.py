"""CSV downloads as streamed HTTP responses, for the API and the dashboard alike.

Rows are read in batches while the response is sent (`cloud.domain.listing.iter_rows`),
with a session of their own that lives as long as the stream, so a large export neither
waits for the whole list nor holds it in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from cloud.db.engine import SessionFactory
from cloud.domain.export import csv_chunks
from cloud.domain.listing import ListQuery, ListSpec, export_row, iter_rows
from cloud.domain.search import SearchResults

__all__ = [
    "SEARCH_COLUMNS",
    "csv_filename",
    "csv_response",
    "list_csv_response",
    "params_of",
    "search_csv_response",
]

SEARCH_COLUMNS = ("kind", "id", "title", "detail", "asset_id", "alert_id", "at")


def csv_filename(name: str, now: datetime) -> str:
    return f"ironwatch-{name}-{now.strftime('%Y%m%dT%H%M%SZ')}.csv"


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> StreamingResponse:
    """A streamed `text/csv` attachment (UTF-8 with BOM, formula-safe cells)."""
    return StreamingResponse(
        csv_chunks(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def list_csv_response(
    session_factory: SessionFactory, spec: ListSpec, query: ListQuery, filename: str
) -> StreamingResponse:
    """Every row of a filtered list (all pages), streamed."""

    def rows() -> Iterator[list[object]]:
        with session_factory() as session:
            for row in iter_rows(session, spec, query):
                yield export_row(spec, row)

    return csv_response(filename, [c.name for c in spec.columns], rows())


def search_csv_response(results: SearchResults, filename: str) -> StreamingResponse:
    rows = ([h.kind, h.id, h.title, h.detail, h.asset_id, h.alert_id, h.at] for h in results.hits())
    return csv_response(filename, SEARCH_COLUMNS, rows)


def params_of(model: BaseModel) -> Mapping[str, Sequence[str]]:
    """A typed query model as the URL parameters `cloud.domain.listing.parse_query` reads."""
    out: dict[str, list[str]] = {}
    for name, value in model.model_dump(by_alias=True, exclude_none=True, mode="json").items():
        values = value if isinstance(value, list) else [value]
        if values:
            out[name] = [str(v) for v in values]
    return out
