"""Filtered, sorted, paged lists of alerts, work orders and assets, from URL parameters.

One description per list (`ListSpec`): its filters (`Facet`, each a URL parameter that may
repeat: `?state=open&state=assigned`), its date range, its sort keys and the columns of
its CSV export. The dashboard's pages, their CSV export and the REST API's export read
the same spec, so a filter means the same everywhere and a new one (a customer, once
assets have one) is one more `Facet`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, defer, selectinload
from sqlalchemy.orm.attributes import InstrumentedAttribute
from sqlalchemy.sql.elements import SQLCoreOperations

from cloud.db.models import Alert, Asset, Customer, Site, WorkOrder
from cloud.domain.errors import InvalidInputError
from cloud.domain.vocabulary import (
    ASSET_KINDS,
    CUSTOMER_TIERS,
    PRIORITIES,
    SEVERITIES,
    AlertState,
    WorkOrderSource,
    WorkOrderState,
)

__all__ = [
    "ALERTS",
    "ASSETS",
    "LISTS",
    "MAX_PER_PAGE",
    "WORK_ORDERS",
    "ExportColumn",
    "Facet",
    "ListQuery",
    "ListSpec",
    "build_select",
    "export_row",
    "fetch_page",
    "iter_rows",
    "parse_query",
]

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_VALUES = 20
MAX_VALUE_CHARS = 64
# Rows fetched per round trip while an export streams.
EXPORT_BATCH = 500
# Parameters every list takes besides its facets.
COMMON_PARAMS = frozenset({"from", "to", "sort", "page", "per_page"})

ALERT_STATES: tuple[str, ...] = AlertState.__args__  # type: ignore[attr-defined]
WORK_ORDER_STATES: tuple[str, ...] = WorkOrderState.__args__  # type: ignore[attr-defined]
WORK_ORDER_SOURCES: tuple[str, ...] = WorkOrderSource.__args__  # type: ignore[attr-defined]


def N_(message: str) -> str:
    """Mark a label for translation (N_ is the name message extractors look for); the page
    translates it when it renders it."""
    return message


@dataclass(frozen=True)
class Facet:
    """One filter of a list: a URL parameter taking one or more values (OR-ed together).

    `choices` is the closed vocabulary the values must come from; None takes free values
    (ids, failure modes) of bounded length."""

    name: str
    label: str
    clause: Callable[[Sequence[str]], ColumnElement[bool]]
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ExportColumn:
    """One column of a list's CSV export."""

    name: str
    value: Callable[[Any], object]


@dataclass(frozen=True)
class ListSpec:
    """Everything a list page, its export and the API need to know about one list."""

    name: str
    model: type[Any]
    id_column: InstrumentedAttribute[Any]
    facets: tuple[Facet, ...]
    date_column: InstrumentedAttribute[Any] | None
    sorts: Mapping[str, tuple[SQLCoreOperations[Any], ...]]
    default_sort: str
    columns: tuple[ExportColumn, ...]
    load_asset: bool = True
    # Large columns the export does not write: not read while it streams.
    not_exported: tuple[InstrumentedAttribute[Any], ...] = ()

    def facet(self, name: str) -> Facet | None:
        return next((f for f in self.facets if f.name == name), None)

    @property
    def params(self) -> frozenset[str]:
        return COMMON_PARAMS | {f.name for f in self.facets}


@dataclass(frozen=True)
class ListQuery:
    """A parsed query: facet values, the date range (UTC days, both inclusive), sort, page."""

    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    date_from: date | None = None
    date_to: date | None = None
    sort: str = ""
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def values(self, name: str) -> tuple[str, ...]:
        return self.filters.get(name, ())

    @property
    def is_filtered(self) -> bool:
        return any(self.filters.values()) or self.date_from is not None or self.date_to is not None

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The query as URL parameters (repeated for several values), with `changes`."""
        query = replace(self, **changes) if changes else self
        out: list[tuple[str, str]] = []
        for name, values in query.filters.items():
            out.extend((name, v) for v in values)
        if query.date_from is not None:
            out.append(("from", query.date_from.isoformat()))
        if query.date_to is not None:
            out.append(("to", query.date_to.isoformat()))
        if query.sort:
            out.append(("sort", query.sort))
        if query.page != 1:
            out.append(("page", str(query.page)))
        if query.per_page != DEFAULT_PER_PAGE:
            out.append(("per_page", str(query.per_page)))
        return out

    def url(self, path: str, extra: Sequence[tuple[str, str]] = (), **changes: Any) -> str:
        """`path` with this query (and `changes`) and `extra` parameters, e.g. format=csv."""
        params = [*self.params(**changes), *extra]
        return f"{path}?{urlencode(params)}" if params else path


def _int(params: Mapping[str, Sequence[str]], name: str, default: int, high: int) -> int:
    raw = [v for v in params.get(name, ()) if v.strip()]
    if not raw:
        return default
    try:
        value = int(raw[-1])
    except ValueError as err:
        raise InvalidInputError(f"{name} must be a whole number, not {raw[-1]!r}") from err
    if not 1 <= value <= high:
        raise InvalidInputError(f"{name} must be between 1 and {high}")
    return value


def _day(params: Mapping[str, Sequence[str]], name: str) -> date | None:
    raw = [v for v in params.get(name, ()) if v.strip()]
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[-1].strip()[:10])
    except ValueError as err:
        raise InvalidInputError(f"{name} must be a date like 2026-03-02, not {raw[-1]!r}") from err


def parse_query(
    spec: ListSpec,
    params: Mapping[str, Sequence[str]],
    *,
    ignore: frozenset[str] = frozenset(),
) -> ListQuery:
    """Read a list's query from URL parameters (each name may repeat); InvalidInputError on
    an unknown parameter, a value outside a facet's vocabulary, a bad date, sort or page.

    Empty values are skipped: an HTML form sends `state=` for "any state"."""
    unknown = sorted(set(params) - spec.params - ignore)
    if unknown:
        raise InvalidInputError(
            f"unknown filter(s): {', '.join(unknown)}",
            details={"unknown": unknown, "allowed": sorted(spec.params)},
        )
    filters: dict[str, tuple[str, ...]] = {}
    for facet in spec.facets:
        values = tuple(dict.fromkeys(v.strip() for v in params.get(facet.name, ()) if v.strip()))
        if len(values) > MAX_VALUES:
            raise InvalidInputError(f"at most {MAX_VALUES} values of {facet.name}")
        for value in values:
            if facet.choices is not None and value not in facet.choices:
                raise InvalidInputError(
                    f"{facet.name} {value!r} is not one of {', '.join(facet.choices)}",
                    details={"allowed": list(facet.choices)},
                )
            if len(value) > MAX_VALUE_CHARS or "\x00" in value:
                raise InvalidInputError(f"{facet.name} value is too long or not text")
        if values:
            filters[facet.name] = values
    sort = next((v.strip() for v in reversed(params.get("sort", ())) if v.strip()), "")
    if sort and sort.removeprefix("-") not in spec.sorts:
        raise InvalidInputError(
            f"cannot sort by {sort!r}",
            details={"allowed": sorted(spec.sorts) + sorted(f"-{k}" for k in spec.sorts)},
        )
    date_from, date_to = _day(params, "from"), _day(params, "to")
    if date_from and date_to and date_from > date_to:
        raise InvalidInputError("the date range ends before it starts")
    per_page = _int(params, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    return ListQuery(
        filters=filters,
        date_from=date_from,
        date_to=date_to,
        sort=sort,
        page=_int(params, "page", 1, 1_000_000),
        per_page=per_page,
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def build_select(spec: ListSpec, query: ListQuery, *, eager: bool = True) -> Select[Any]:
    """The filtered, sorted statement (no paging); `eager` loads each row's asset with it."""
    stmt = select(spec.model)
    if spec.load_asset and eager:
        stmt = stmt.options(selectinload(spec.model.asset))
    for name, values in query.filters.items():
        facet = spec.facet(name)
        if facet is not None and values:
            stmt = stmt.where(facet.clause(values))
    if spec.date_column is not None:
        if query.date_from is not None:
            stmt = stmt.where(spec.date_column >= _midnight(query.date_from))
        if query.date_to is not None:
            stmt = stmt.where(spec.date_column < _midnight(query.date_to + timedelta(days=1)))
    key = query.sort or spec.default_sort
    descending = key.startswith("-")
    order = spec.sorts[key.removeprefix("-")]
    columns = [c.desc() if descending else c.asc() for c in order]
    # The id last, so rows with equal keys keep one order across pages.
    return stmt.order_by(*columns, spec.id_column.desc() if descending else spec.id_column.asc())


def fetch_page(session: Session, spec: ListSpec, query: ListQuery) -> tuple[list[Any], int]:
    """One page of rows and the number of rows the filters match."""
    stmt = build_select(spec, query)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.scalars(
        stmt.limit(query.per_page).offset((query.page - 1) * query.per_page)
    ).all()
    return list(rows), int(total or 0)


def iter_rows(session: Session, spec: ListSpec, query: ListQuery) -> Iterator[Any]:
    """Every matching row (all pages), fetched in batches: what an export streams.

    The row's asset is loaded lazily and kept: a fleet has few assets and many alerts, so
    after its first row each asset comes from the session's identity map instead of being
    loaded again with every batch."""
    stmt = build_select(spec, query, eager=False).execution_options(yield_per=EXPORT_BATCH)
    if spec.not_exported:
        stmt = stmt.options(*(defer(column, raiseload=True) for column in spec.not_exported))
    assets: dict[str, Any] = {}
    for row in session.scalars(stmt):
        if spec.load_asset and row.asset_id not in assets:
            assets[row.asset_id] = row.asset
        yield row


def export_row(spec: ListSpec, row: Any) -> list[object]:
    return [c.value(row) for c in spec.columns]


# -- the lists -------------------------------------------------------------------------------
def _in(column: InstrumentedAttribute[Any]) -> Callable[[Sequence[str]], ColumnElement[bool]]:
    return column.in_


def _assets_of_customers(values: Sequence[str]) -> Select[Any]:
    return select(Asset.id).join(Site, Asset.site_id == Site.id).where(Site.customer_id.in_(values))


def _assets_of_tiers(values: Sequence[str]) -> Select[Any]:
    # The tier that counts (Asset.tier): the site's customer's, else the asset's own.
    return (
        select(Asset.id)
        .outerjoin(Site, Asset.site_id == Site.id)
        .outerjoin(Customer, Site.customer_id == Customer.id)
        .where(
            or_(
                Customer.tier.in_(values),
                and_(Asset.site_id.is_(None), Asset.customer_tier.in_(values)),
            )
        )
    )


def _via_asset(
    column: InstrumentedAttribute[Any], assets: Callable[[Sequence[str]], Select[Any]]
) -> Callable[[Sequence[str]], ColumnElement[bool]]:
    # A filter on what the row's asset belongs to (customer, tier).
    return lambda values: column.in_(assets(values))


def _severity_rank() -> ColumnElement[int]:
    return case({s: i for i, s in enumerate(SEVERITIES)}, value=Alert.severity, else_=-1)


def _asset_name(row: Any) -> str:
    return str(row.asset.name or row.asset_id)


ALERTS = ListSpec(
    name="alerts",
    model=Alert,
    id_column=Alert.id,
    facets=(
        Facet("state", N_("State"), _in(Alert.state), ALERT_STATES),
        Facet("severity", N_("Severity"), _in(Alert.severity), SEVERITIES),
        Facet("asset", N_("Asset"), _in(Alert.asset_id)),
        Facet("failure_mode", N_("Failure mode"), _in(Alert.failure_mode)),
        Facet("customer", N_("Customer"), _via_asset(Alert.asset_id, _assets_of_customers)),
        Facet(
            "tier", "Customer tier", _via_asset(Alert.asset_id, _assets_of_tiers), CUSTOMER_TIERS
        ),
    ),
    date_column=Alert.opened_at,
    sorts={
        "opened": (Alert.opened_at,),
        "last_seen": (Alert.last_seen_at,),
        "severity": (_severity_rank(), Alert.opened_at),
        "state": (Alert.state, Alert.opened_at),
        "asset": (Alert.asset_id, Alert.opened_at),
        "score": (Alert.score,),
    },
    default_sort="-opened",
    columns=(
        ExportColumn("id", lambda a: a.id),
        ExportColumn("asset_id", lambda a: a.asset_id),
        ExportColumn("asset_name", _asset_name),
        ExportColumn("failure_mode", lambda a: a.failure_mode),
        ExportColumn("severity", lambda a: a.severity),
        ExportColumn("state", lambda a: a.state),
        ExportColumn("score", lambda a: a.score),
        ExportColumn("iso_zone", lambda a: a.iso_zone),
        ExportColumn("opened_at", lambda a: a.opened_at),
        ExportColumn("last_seen_at", lambda a: a.last_seen_at),
        ExportColumn("acknowledged_at", lambda a: a.acknowledged_at),
        ExportColumn("acknowledged_by", lambda a: a.acknowledged_by),
        ExportColumn("resolved_at", lambda a: a.resolved_at),
        ExportColumn("resolved_by", lambda a: a.resolved_by),
        ExportColumn("resolution_note", lambda a: a.resolution_note),
        ExportColumn("rul_low_h", lambda a: a.rul_low_h),
        ExportColumn("rul_median_h", lambda a: a.rul_median_h),
        ExportColumn("rul_high_h", lambda a: a.rul_high_h),
        ExportColumn("model", lambda a: a.model),
        ExportColumn("model_version", lambda a: a.model_version),
    ),
    not_exported=(Alert.evidence,),
)

WORK_ORDERS = ListSpec(
    name="work-orders",
    model=WorkOrder,
    id_column=WorkOrder.id,
    facets=(
        Facet("state", N_("State"), _in(WorkOrder.state), WORK_ORDER_STATES),
        Facet("priority", N_("Priority"), _in(WorkOrder.priority), PRIORITIES),
        Facet("asset", N_("Asset"), _in(WorkOrder.asset_id)),
        Facet("failure_mode", N_("Failure mode"), _in(WorkOrder.failure_mode)),
        Facet("source", N_("Source"), _in(WorkOrder.source), WORK_ORDER_SOURCES),
        Facet("customer", N_("Customer"), _via_asset(WorkOrder.asset_id, _assets_of_customers)),
        Facet(
            "tier",
            "Customer tier",
            _via_asset(WorkOrder.asset_id, _assets_of_tiers),
            CUSTOMER_TIERS,
        ),
    ),
    date_column=WorkOrder.created_at,
    sorts={
        "priority": (WorkOrder.priority, WorkOrder.resolve_by),
        "resolve_by": (WorkOrder.resolve_by,),
        "respond_by": (WorkOrder.respond_by,),
        "created": (WorkOrder.created_at,),
        "state": (WorkOrder.state, WorkOrder.priority),
        "asset": (WorkOrder.asset_id, WorkOrder.priority),
    },
    default_sort="priority",
    columns=(
        ExportColumn("id", lambda w: w.id),
        ExportColumn("asset_id", lambda w: w.asset_id),
        ExportColumn("asset_name", _asset_name),
        ExportColumn("title", lambda w: w.title),
        ExportColumn("failure_mode", lambda w: w.failure_mode),
        ExportColumn("priority", lambda w: w.priority),
        ExportColumn("state", lambda w: w.state),
        ExportColumn("assignee", lambda w: w.assignee),
        ExportColumn("source", lambda w: w.source),
        ExportColumn("alert_id", lambda w: w.alert_id),
        ExportColumn("created_at", lambda w: w.created_at),
        ExportColumn("respond_by", lambda w: w.respond_by),
        ExportColumn("resolve_by", lambda w: w.resolve_by),
        ExportColumn("responded_at", lambda w: w.responded_at),
        ExportColumn("planned_for", lambda w: w.planned_for),
        ExportColumn("done_at", lambda w: w.done_at),
        ExportColumn("closed_at", lambda w: w.closed_at),
        ExportColumn("cancelled_at", lambda w: w.cancelled_at),
        ExportColumn("resolution_note", lambda w: w.resolution_note),
    ),
    not_exported=(WorkOrder.description, WorkOrder.suggested_actions, WorkOrder.spare_parts),
)

ASSETS = ListSpec(
    name="assets",
    model=Asset,
    id_column=Asset.id,
    facets=(
        Facet("kind", N_("Kind"), _in(Asset.kind), ASSET_KINDS),
        Facet("customer", N_("Customer"), _via_asset(Asset.id, _assets_of_customers)),
        Facet("tier", N_("Customer tier"), _via_asset(Asset.id, _assets_of_tiers), CUSTOMER_TIERS),
        Facet("gateway", N_("Gateway"), _in(Asset.gateway_id)),
    ),
    date_column=None,
    sorts={
        "id": (Asset.id,),
        "name": (Asset.name,),
        "kind": (Asset.kind, Asset.id),
        "running_hours": (Asset.running_hours,),
    },
    default_sort="id",
    columns=(
        ExportColumn("id", lambda a: a.id),
        ExportColumn("name", lambda a: a.name),
        ExportColumn("kind", lambda a: a.kind),
        ExportColumn("location", lambda a: a.location),
        ExportColumn("gateway_id", lambda a: a.gateway_id),
        ExportColumn("site_id", lambda a: a.site_id),
        ExportColumn("customer_id", lambda a: a.customer_id),
        ExportColumn("customer_tier", lambda a: a.tier),
        ExportColumn("running_hours", lambda a: a.running_hours),
        ExportColumn("speed_rpm", lambda a: a.physics.speed_rpm if a.physics else None),
        ExportColumn("iso_group", lambda a: a.physics.iso_group if a.physics else None),
    ),
    load_asset=False,
)

LISTS: Mapping[str, ListSpec] = {s.name: s for s in (ALERTS, WORK_ORDERS, ASSETS)}
