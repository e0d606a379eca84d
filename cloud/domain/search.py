"""Search across assets, alerts and work orders by what people type: names, ids, failure
modes, assignees.

Every word must match (AND); a word matches a row when it is a case-insensitive substring
of one of the row's searched fields (OR), so "pump outer" finds the outer-race alert on
"Cooling pump 1". Substring matching (ILIKE) needs no word splitter, so Chinese names work
as typed, and it is the same SQL on SQLite and PostgreSQL. On PostgreSQL the searched
text columns have trigram GIN indexes (pg_trgm, see cloud/db/models.py), which serve
`ILIKE '%word%'`; on SQLite, the single-machine store, the tables are small enough to scan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from cloud.db.models import Alert, Asset, WorkOrder
from cloud.domain import cases as cases_domain
from cloud.domain.errors import InvalidInputError
from cloud.domain.vocabulary import PRIORITIES, SEVERITIES, AlertState, WorkOrderState

__all__ = ["MAX_QUERY_CHARS", "MAX_TERMS", "SearchHit", "SearchResults", "search", "terms_of"]

MAX_QUERY_CHARS = 200
MAX_TERMS = 8
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
# Asset ids a word may expand to before the subquery is used instead of a list.
MAX_ASSET_IDS = 500
ALERT_STATES: tuple[str, ...] = get_args(AlertState)
WORK_ORDER_STATES: tuple[str, ...] = get_args(WorkOrderState)


@dataclass(frozen=True)
class SearchHit:
    """One row found: what it is, its id, a title and a line of detail."""

    kind: str
    id: str
    title: str
    detail: str
    asset_id: str
    alert_id: int | None
    at: datetime | None


@dataclass
class SearchResults:
    """Hits per kind (each at most `limit`, newest first) and how many matched in all."""

    query: str
    terms: tuple[str, ...]
    assets: list[SearchHit] = field(default_factory=list)
    alerts: list[SearchHit] = field(default_factory=list)
    work_orders: list[SearchHit] = field(default_factory=list)
    cases: list[SearchHit] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)

    def hits(self) -> list[SearchHit]:
        return [*self.assets, *self.alerts, *self.work_orders, *self.cases]

    @property
    def total(self) -> int:
        return sum(self.totals.values())


def terms_of(query: str) -> tuple[str, ...]:
    """The words of a query; InvalidInputError if it is too long or has too many words."""
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInputError(f"the search is longer than {MAX_QUERY_CHARS} characters")
    if "\x00" in query:
        raise InvalidInputError("the search contains a NUL character")
    words = tuple(dict.fromkeys(w for w in query.split() if w))
    if len(words) > MAX_TERMS:
        raise InvalidInputError(f"at most {MAX_TERMS} words in a search")
    return words


def _pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _like(column: Any, term: str) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column.ilike(_pattern(term), escape="\\")
    return result


def _number(term: str) -> int | None:
    digits = term.removeprefix("#").removeprefix("WO-").removeprefix("wo-")
    if digits.isdigit() and len(digits) <= 9:
        return int(digits)
    return None


def _assets_named(session: Session, term: str) -> Select[Any] | list[str]:
    """The ids of the assets whose id or name contains `term`: a list (an indexed `IN` on
    alerts and work orders), or the subquery itself when very many match."""
    named = select(Asset.id).where(or_(_like(Asset.id, term), _like(Asset.name, term)))
    ids = list(session.scalars(named.limit(MAX_ASSET_IDS + 1)))
    return named if len(ids) > MAX_ASSET_IDS else ids


def _asset_clause(term: str, assets: Select[Any] | list[str]) -> ColumnElement[bool]:
    return or_(
        _like(Asset.id, term),
        _like(Asset.name, term),
        _like(Asset.location, term),
        _like(Asset.kind, term),
    )


# Each alternative below is one an index serves on PostgreSQL (trigram GIN for ILIKE,
# b-tree for ids, states and asset ids), and vocabulary words (a severity, a state, a
# priority) are only compared when the word is one: a single unindexed alternative would
# turn the whole OR into a scan of the table.
def _alert_clause(term: str, assets: Select[Any] | list[str]) -> ColumnElement[bool]:
    word = term.lower()
    options = [_like(Alert.failure_mode, term)]
    if assets:
        options.append(Alert.asset_id.in_(assets))
    if word in SEVERITIES:
        options.append(Alert.severity == word)
    if word in ALERT_STATES:
        options.append(Alert.state == word)
    if (number := _number(term)) is not None:
        options.append(Alert.id == number)
    return or_(*options)


def _work_order_clause(term: str, assets: Select[Any] | list[str]) -> ColumnElement[bool]:
    word = term.lower()
    options = [
        _like(WorkOrder.title, term),
        _like(WorkOrder.failure_mode, term),
        _like(WorkOrder.assignee, term),
    ]
    if assets:
        options.append(WorkOrder.asset_id.in_(assets))
    if term.upper() in PRIORITIES:
        options.append(WorkOrder.priority == term.upper())
    if word in WORK_ORDER_STATES:
        options.append(WorkOrder.state == word)
    if (number := _number(term)) is not None:
        options.append(WorkOrder.id == number)
    return or_(*options)


def _run(
    session: Session,
    stmt: Select[Any],
    clause: Callable[[str, Select[Any] | list[str]], ColumnElement[bool]],
    terms: Sequence[tuple[str, Select[Any] | list[str]]],
    limit: int,
) -> tuple[list[Any], int]:
    where = and_(*(clause(t, assets) for t, assets in terms))
    stmt = stmt.where(where)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return list(session.scalars(stmt.limit(limit)).all()), int(total or 0)


def _mode(text: str) -> str:
    return text.replace("_", " ")


def search(session: Session, query: str, *, limit: int = DEFAULT_LIMIT) -> SearchResults:
    """Assets, alerts, work orders and fault cases matching every word of `query`
    (empty: nothing)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}")
    terms = terms_of(query)
    results = SearchResults(query=query.strip(), terms=terms)
    if not terms:
        return results
    named = [(t, _assets_named(session, t)) for t in terms]
    assets, results.totals["assets"] = _run(
        session, select(Asset).order_by(Asset.name, Asset.id), _asset_clause, named, limit
    )
    alerts, results.totals["alerts"] = _run(
        session,
        select(Alert)
        .options(selectinload(Alert.asset))
        .order_by(Alert.opened_at.desc(), Alert.id.desc()),
        _alert_clause,
        named,
        limit,
    )
    orders, results.totals["work_orders"] = _run(
        session,
        select(WorkOrder)
        .options(selectinload(WorkOrder.asset))
        .order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc()),
        _work_order_clause,
        named,
        limit,
    )
    results.assets = [
        SearchHit(
            "asset", a.id, a.name or a.id, f"{a.kind} · {a.location}".strip(" ·"), a.id, None, None
        )
        for a in assets
    ]
    results.alerts = [
        SearchHit(
            "alert",
            str(a.id),
            f"#{a.id} {_mode(a.failure_mode)}",
            f"{a.asset.name or a.asset_id} · {a.severity} · {a.state}",
            a.asset_id,
            a.id,
            a.opened_at,
        )
        for a in alerts
    ]
    results.work_orders = [
        SearchHit(
            "work_order",
            str(w.id),
            f"WO-{w.id} {w.title}",
            f"{w.asset.name or w.asset_id} · {w.priority} · {w.state}"
            + (f" · {w.assignee}" if w.assignee else ""),
            w.asset_id,
            w.alert_id,
            w.created_at,
        )
        for w in orders
    ]
    # The fault case library: every word in the title, cause, action, asset or mode.
    found = cases_domain.list_cases(session, text=" ".join(terms), limit=limit)
    results.totals["cases"] = found.total
    results.cases = [
        SearchHit(
            "case",
            str(c.id),
            f"{_mode(c.failure_mode)}: {c.cause_found or c.title}"[:200],
            f"{c.asset_name} · {c.action_taken}"[:200].rstrip(" ·"),
            c.asset_id,
            c.alert_id,
            c.closed_at,
        )
        for c in found.items
    ]
    return results
