"""The work-order board (`/work-orders`) with filters, a sortable paged list view, and CSV.

The filters live in the URL (`?state=open&state=assigned&priority=P1`), so a filtered
board can be bookmarked and shared. The board shows the kanban columns of the chosen
states; the list view (`view=list`) every state, sorted and paged; `format=csv` every
matching row.
No `from __future__ import annotations`: FastAPI resolves the local `Annotated` dependencies.
"""

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from cloud.api.csv_response import csv_filename, list_csv_response
from cloud.api.deps import ContextDep, NowDep
from cloud.dashboard._kit import PageKit, multi_params
from cloud.dashboard._views import (
    BOARD_COLUMN_OF,
    BOARD_COLUMNS,
    WorkOrderCard,
    work_order_card,
)
from cloud.dashboard.auth import Viewer
from cloud.dashboard.i18n import gettext as _
from cloud.domain import listing
from cloud.domain.errors import DomainError

__all__ = ["DONE_WITHIN", "build_router", "filtered_board"]

DONE_WITHIN = timedelta(days=7)
# The board shows at most this many cards per column; the list view pages through the rest.
BOARD_LIMIT = 200
REFRESH_S = 30


def filtered_board(
    session: Session, now: datetime, query: listing.ListQuery
) -> dict[str, list[WorkOrderCard]]:
    """Cards per board column for the query's states (all four without a state filter);
    "done" keeps only the last week so the board stays short."""
    board_states = [s for s, _ in BOARD_COLUMNS]
    wanted = query.values("state")
    # A column also shows the states it holds (accepted in Open, follow_up in Done).
    chosen = [
        s for s in board_states
        if s in wanted or any(c == s and o in wanted for o, c in BOARD_COLUMN_OF.items())
    ] or board_states
    held = [o for o, c in BOARD_COLUMN_OF.items() if c in chosen and (not wanted or o in wanted)]
    shown = [s for s in chosen if not wanted or s in wanted] + held
    filters = {**query.filters, "state": tuple(shown)}
    stmt = listing.build_select(listing.WORK_ORDERS, replace(query, filters=filters))
    board: dict[str, list[WorkOrderCard]] = {s: [] for s in chosen}
    for wo in session.scalars(stmt.limit(BOARD_LIMIT * len(chosen))):
        column = BOARD_COLUMN_OF.get(wo.state, wo.state)
        if column == "done" and wo.done_at is not None and now - wo.done_at > DONE_WITHIN:
            continue
        if len(board[column]) < BOARD_LIMIT:
            board[column].append(work_order_card(wo, now))
    return board


def build_router(kit: PageKit) -> APIRouter:
    """`/work-orders`: board, list and CSV of the same filters."""
    router = APIRouter(include_in_schema=False)
    ViewerDep = Annotated[Viewer, Depends(kit.viewer)]
    ReadSessionDep = Annotated[Session, Depends(kit.read_session)]

    @router.get("/work-orders", response_model=None)
    def board(
        request: Request,
        session: ReadSessionDep,
        context: ContextDep,
        now: NowDep,
        who: ViewerDep,
    ) -> Response:
        params = multi_params(request)
        try:
            query = listing.parse_query(
                listing.WORK_ORDERS, params, ignore=frozenset({"format", "view"})
            )
        except DomainError as err:
            return kit.error_page(request, who, 400, _("Bad filter"), err.message)
        if params.get("format") == ["csv"]:
            return list_csv_response(
                context.session_factory,
                listing.WORK_ORDERS,
                query,
                csv_filename("work-orders", now),
            )
        board_states = {s for s, _ in BOARD_COLUMNS} | set(BOARD_COLUMN_OF)
        states = set(query.values("state"))
        # Closed and cancelled orders have no column: show them in the list.
        as_list = params.get("view") == ["list"] or bool(states and not states & board_states)
        common = {
            "spec": listing.WORK_ORDERS,
            "query": query,
            "as_list": as_list,
            "titles": {s: _(t) for s, t in BOARD_COLUMNS},
        }
        if as_list:
            rows, total = listing.fetch_page(session, listing.WORK_ORDERS, query)
            return kit.render(
                request,
                "work_orders.html",
                who,
                rows=[work_order_card(w, now) for w in rows],
                total=total,
                columns={},
                **common,
            )
        return kit.render(
            request,
            "work_orders.html",
            who,
            columns=filtered_board(session, now, query),
            refresh_s=REFRESH_S,
            rows=[],
            total=0,
            **common,
        )

    return router
