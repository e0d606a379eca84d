"""/telemetry: feature records read back from the telemetry store, a bounded page at a time."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request

from cloud.api.auth import Principal
from cloud.api.context import ApiContext
from cloud.api.deps import ContextDep
from cloud.api.errors import ERROR_RESPONSES, ErrorResponse, api_error
from cloud.api.routes._common import CustomerEngineerDep
from cloud.api.schemas import TelemetryCount, TelemetryPage, TelemetryRow
from cloud.api.schemas.common import ID_PATTERN, MAX_TIME, MIN_TIME
from cloud.api.schemas.queries import TelemetryCountQuery, TelemetryQuery

router = APIRouter(
    tags=["telemetry"],
    responses={**ERROR_RESPONSES, 503: {"model": ErrorResponse, "description": "No store"}},
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_NS = int((MIN_TIME - _EPOCH).total_seconds()) * 10**9
_MAX_NS = int((MAX_TIME - _EPOCH).total_seconds()) * 10**9
_MAX_SEQ = 2**63 - 1
# Rows sharing one timestamp that pages may step over; a fleet writes far fewer per instant.
_MAX_SKIP = 1_000_000


@dataclass(frozen=True)
class TelemetryCursor:
    """Where the next page starts: after row (ts_ns, gateway_id, seq), the `skip`-th row
    returned so far at that same timestamp (the store orders by time, gateway, seq)."""

    ts_ns: int
    gateway_id: str
    seq: int
    skip: int

    def encode(self) -> str:
        text = f"{self.ts_ns}:{self.gateway_id}:{self.seq}:{self.skip}"
        return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> TelemetryCursor:
        """The cursor in `token`; ValueError if it was not made by `encode`."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
            ts, gateway_id, seq, skip = text.split(":")
            cursor = cls(int(ts), gateway_id, int(seq), int(skip))
        except (binascii.Error, UnicodeDecodeError, ValueError) as err:
            raise ValueError("not a cursor from this API") from err
        if not (
            _MIN_NS <= cursor.ts_ns < _MAX_NS
            and re.fullmatch(ID_PATTERN, cursor.gateway_id)
            and 0 <= cursor.seq <= _MAX_SEQ
            and 1 <= cursor.skip <= _MAX_SKIP
        ):
            raise ValueError("not a cursor from this API")
        return cursor

    def after(self, ts_ns: int, gateway_id: str, seq: int) -> bool:
        """True if a row comes after the cursor in the store's order."""
        return (ts_ns, gateway_id, seq) > (self.ts_ns, self.gateway_id, self.seq)

    @property
    def at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.ts_ns // 1000)


def _row(frame: Any, i: int, names: list[str], finite: Any, asked: bool) -> TelemetryRow:
    values = frame.values[i]
    # NaN means "no value" in the frame; JSON has no NaN. Features asked for by name are
    # all present (null when missing); otherwise a row lists only the values it has, found
    # with numpy: a wide frame has thousands of columns, nearly all NaN in any one row.
    features: dict[str, float | None]
    if asked:
        features = {
            n: (float(v) if ok else None)
            for n, v, ok in zip(names, values, finite[i], strict=True)
        }
    else:
        features = {names[j]: float(values[j]) for j in np.flatnonzero(finite[i])}
    return TelemetryRow(
        ts=_EPOCH + timedelta(microseconds=int(frame.ts_ns[i]) // 1000),
        gateway_id=str(frame.gateway_ids[i]),
        seq=int(frame.seqs[i]),
        asset_id=str(frame.asset_ids[i]),
        point=str(frame.points[i]),
        window_s=float(frame.window_s[i]),
        stale=bool(frame.stale[i]),
        features=features,
    )


def _visible_assets(
    context: ApiContext, principal: Principal, asset_ids: list[str] | None
) -> list[str] | None:
    """The asked assets, each checked against the caller's scope (404 like a missing one);
    for a customer asking for none, all of its own. None: the whole fleet."""
    scope = principal.scope
    if scope.whole_fleet:
        return asset_ids
    with context.session_factory() as session:
        if asset_ids is None:
            return list(session.scalars(scope.asset_ids().order_by(None)))
        return [scope.asset(session, asset_id).id for asset_id in asset_ids]


@router.get("/telemetry/count", response_model=TelemetryCount)
def count_telemetry(
    *,
    context: ContextDep,
    principal: CustomerEngineerDep,
    q: Annotated[TelemetryCountQuery, Query()],
) -> TelemetryCount:
    """How many records are stored for one asset, or for all the caller may see without
    asset_id (the whole fleet, or a customer's own machines)."""
    store = context.telemetry
    if store is None:
        raise api_error(503, "no telemetry store is attached", code="telemetry_unavailable")
    assets = _visible_assets(context, principal, None if q.asset_id is None else [q.asset_id])
    try:
        if assets is None:
            count = store.count(asset_id=None)
        else:
            count = sum(store.count(asset_id=asset_id) for asset_id in assets)
    except Exception as err:
        raise api_error(503, f"telemetry store unavailable: {type(err).__name__}") from err
    return TelemetryCount(asset_id=q.asset_id, count=count)


@router.get("/telemetry", response_model=TelemetryPage)
def query_telemetry(
    *,
    request: Request,
    context: ContextDep,
    principal: CustomerEngineerDep,
    q: Annotated[TelemetryQuery, Query()],
) -> TelemetryPage:
    """Feature records of the given assets in [start, end), oldest first, one page of at most
    `limit`; `next` is the link to the following page (null on the last one)."""
    store = context.telemetry
    if store is None:
        raise api_error(503, "no telemetry store is attached", code="telemetry_unavailable")
    _visible_assets(context, principal, list(q.asset_id))
    cursor: TelemetryCursor | None = None
    if q.cursor is not None:
        try:
            cursor = TelemetryCursor.decode(q.cursor)
        except ValueError as err:
            raise api_error(422, str(err), details={"parameter": "cursor"}) from err
    start = q.start
    if cursor is not None and (start is None or cursor.at > start):
        start = cursor.at
    skip = cursor.skip if cursor is not None else 0
    try:
        frame = store.query(
            asset_ids=q.asset_id,
            point=q.point,
            start=start,
            end=q.end,
            features=q.feature,
            # One row more than the page tells whether there is a next page.
            limit=skip + q.limit + 1,
        )
    except ValueError as err:
        raise api_error(422, f"invalid telemetry query: {err}") from err
    except Exception as err:
        # The store is another service (InfluxDB) at scale: its failure is not our 500.
        raise api_error(503, f"telemetry store unavailable: {type(err).__name__}") from err
    keep = [
        i
        for i in range(len(frame))
        if cursor is None
        or cursor.after(int(frame.ts_ns[i]), str(frame.gateway_ids[i]), int(frame.seqs[i]))
    ]
    page, more = keep[: q.limit], len(keep) > q.limit
    names = list(frame.feature_names)
    finite = np.isfinite(frame.values)
    rows = [_row(frame, i, names, finite, asked=q.feature is not None) for i in page]
    next_cursor: str | None = None
    if more and page:
        last = page[-1]
        last_ts = int(frame.ts_ns[last])
        same = sum(1 for i in page if int(frame.ts_ns[i]) == last_ts)
        if cursor is not None and cursor.ts_ns == last_ts:
            same += cursor.skip
        next_cursor = TelemetryCursor(
            last_ts, str(frame.gateway_ids[last]), int(frame.seqs[last]), min(same, _MAX_SKIP)
        ).encode()
    shown = names if q.feature is not None else sorted({n for r in rows for n in r.features})
    next_url = (
        str(request.url.include_query_params(cursor=next_cursor)).removeprefix(
            str(request.base_url).rstrip("/")
        )
        if next_cursor is not None
        else None
    )
    return TelemetryPage(
        items=rows,
        count=len(rows),
        limit=q.limit,
        feature_names=shown,
        next_cursor=next_cursor,
        next=next_url,
    )
