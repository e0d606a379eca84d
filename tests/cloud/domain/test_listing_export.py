"""List filters from URL parameters, and CSV cells and files: pure logic, no database."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest

from cloud.domain import listing
from cloud.domain.errors import InvalidInputError
from cloud.domain.export import BOM, csv_cell, csv_chunks
from cloud.domain.search import terms_of


def test_repeated_parameters_are_several_values() -> None:
    q = listing.parse_query(
        listing.WORK_ORDERS,
        {"state": ["open", "assigned", "open", ""], "priority": ["P1"], "asset": [""]},
    )
    assert q.values("state") == ("open", "assigned")  # duplicates and blanks dropped
    assert q.values("priority") == ("P1",)
    assert "asset" not in q.filters
    # Back to the URL with the same values, repeated: the filters are shareable.
    assert q.url("/work-orders") == "/work-orders?state=open&state=assigned&priority=P1"
    assert q.url("/work-orders", [("format", "csv")], page=3).endswith("&page=3&format=csv")
    again = listing.parse_query(listing.WORK_ORDERS, {"state": ["open", "assigned"]})
    assert again.values("state") == q.values("state")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"state": ["opened"]}, "is not one of"),
        ({"colour": ["red"]}, "unknown filter"),
        ({"sort": ["-height"]}, "cannot sort by"),
        ({"from": ["2026-13-01"]}, "must be a date"),
        ({"from": ["2026-03-02"], "to": ["2026-03-01"]}, "ends before it starts"),
        ({"page": ["0"]}, "between 1 and"),
        ({"per_page": ["10000"]}, "between 1 and"),
        ({"page": ["two"]}, "whole number"),
        ({"asset": ["x" * 65]}, "too long"),
        ({"asset": [f"a{i}" for i in range(21)]}, "at most 20"),
    ],
)
def test_bad_parameters_say_what_is_wrong(params: dict[str, list[str]], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        listing.parse_query(listing.ALERTS, params)


def test_date_range_is_whole_utc_days() -> None:
    q = listing.parse_query(listing.ALERTS, {"from": ["2026-03-01"], "to": ["2026-03-02"]})
    assert (q.date_from, q.date_to) == (date(2026, 3, 1), date(2026, 3, 2))
    sql = str(
        listing.build_select(listing.ALERTS, q).compile(compile_kwargs={"literal_binds": True})
    )
    assert "alerts.opened_at >=" in sql and "alerts.opened_at <" in sql


def test_every_facet_is_in_the_api_export_query() -> None:
    from cloud.api.schemas.queries import AlertExportQuery, AssetExportQuery, WorkOrderExportQuery

    for spec, model in (
        (listing.ALERTS, AlertExportQuery),
        (listing.WORK_ORDERS, WorkOrderExportQuery),
        (listing.ASSETS, AssetExportQuery),
    ):
        fields = {f.alias or name for name, f in model.model_fields.items()}
        assert {f.name for f in spec.facets} <= fields, spec.name


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_like_text_is_neutralised(prefix: str) -> None:
    assert csv_cell(f"{prefix}SUM(A1:A9)") == f"'{prefix}SUM(A1:A9)"


def test_cells_keep_their_meaning() -> None:
    assert csv_cell(-1.5) == -1.5 and csv_cell(0) == 0
    assert csv_cell(None) == "" and csv_cell(True) == "true"
    assert csv_cell(datetime(2026, 3, 2, 8, 0, tzinfo=UTC)) == "2026-03-02T08:00:00Z"
    assert csv_cell("pump = fine") == "pump = fine"
    assert csv_cell("冷却泵 1") == "冷却泵 1"


def test_file_has_bom_crlf_and_round_trips_awkward_text() -> None:
    rows: list[list[object]] = [
        [1, 'say "hello", then\nleave', "冷却泵"],
        [2, "=1+1", None],
        *([[i, "x", "y"] for i in range(3, 500)]),
    ]
    chunks = list(csv_chunks(["id", "text", "name"], rows))
    assert len(chunks) >= 3  # streamed in pieces, not one string
    body = b"".join(chunks)
    assert body.startswith(BOM.encode("utf-8"))
    assert b"\r\n" in body
    back = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert back[0] == ["id", "text", "name"]
    assert back[1] == ["1", 'say "hello", then\nleave', "冷却泵"]
    assert back[2] == ["2", "'=1+1", ""]
    assert len(back) == 500


def test_search_words() -> None:
    assert terms_of("  pump   outer pump ") == ("pump", "outer")
    with pytest.raises(InvalidInputError):
        terms_of(" ".join(f"w{i}" for i in range(9)))
    with pytest.raises(InvalidInputError):
        terms_of("x" * 201)
