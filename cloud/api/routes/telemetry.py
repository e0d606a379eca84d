"""/telemetry: feature records read back from the telemetry store."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from cloud.api.deps import ContextDep
from cloud.api.errors import ERROR_RESPONSES, ErrorResponse, api_error
from cloud.api.routes._common import EngineerDep, utc_or_none
from cloud.api.schemas import TelemetryCount, TelemetryPage, TelemetryRow
from cloud.api.schemas.common import UtcInput

router = APIRouter(
    tags=["telemetry"],
    responses={**ERROR_RESPONSES, 503: {"model": ErrorResponse, "description": "No store"}},
)
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_ID_RE = re.compile(_ID)
_FEATURE_RE = re.compile(r"^[a-z][a-z0-9_]{0,79}$")


def _rows(frame: Any) -> list[TelemetryRow]:
    names = list(frame.feature_names)
    rows: list[TelemetryRow] = []
    for i in range(len(frame)):
        values = frame.values[i]
        rows.append(
            TelemetryRow(
                ts=datetime.fromtimestamp(int(frame.ts_ns[i]) / 1e9, tz=UTC),
                gateway_id=str(frame.gateway_ids[i]),
                seq=int(frame.seqs[i]),
                asset_id=str(frame.asset_ids[i]),
                point=str(frame.points[i]),
                window_s=float(frame.window_s[i]),
                stale=bool(frame.stale[i]),
                # NaN means "no value" in the frame; JSON has no NaN, so it becomes null.
                features={
                    n: (float(v) if math.isfinite(v) else None)
                    for n, v in zip(names, values, strict=True)
                },
            )
        )
    return rows


@router.get("/telemetry/count", response_model=TelemetryCount)
def count_telemetry(
    *,
    context: ContextDep,
    _: EngineerDep,
    asset_id: Annotated[str | None, Query(pattern=_ID)] = None,
) -> TelemetryCount:
    """How many records are stored for one asset, or for the whole fleet without asset_id."""
    store = context.telemetry
    if store is None:
        raise api_error(503, "no telemetry store is attached", code="telemetry_unavailable")
    try:
        count = store.count(asset_id=asset_id)
    except Exception as err:
        raise api_error(503, f"telemetry store unavailable: {type(err).__name__}") from err
    return TelemetryCount(asset_id=asset_id, count=count)


@router.get("/telemetry", response_model=TelemetryPage)
def query_telemetry(
    *,
    context: ContextDep,
    _: EngineerDep,
    asset_id: Annotated[list[str], Query(min_length=1, max_length=50)],
    point: Annotated[str | None, Query(pattern=_ID)] = None,
    start: UtcInput | None = None,
    end: UtcInput | None = None,
    feature: Annotated[list[str] | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> TelemetryPage:
    """Feature records of the given assets in [start, end), oldest first, at most `limit`."""
    store = context.telemetry
    if store is None:
        raise api_error(503, "no telemetry store is attached", code="telemetry_unavailable")
    for value in asset_id:
        if not _ID_RE.match(value):
            raise api_error(422, f"invalid asset id {value!r}")
    for value in feature or []:
        if not _FEATURE_RE.match(value):
            raise api_error(422, f"invalid feature name {value!r}")
    begin, stop = utc_or_none(start), utc_or_none(end)
    try:
        frame = store.query(
            asset_ids=asset_id, point=point, start=begin, end=stop, features=feature, limit=limit
        )
    except ValueError as err:
        raise api_error(422, f"invalid telemetry query: {err}") from err
    except Exception as err:
        # The store is another service (InfluxDB) at scale: its failure is not our 500.
        raise api_error(503, f"telemetry store unavailable: {type(err).__name__}") from err
    rows = _rows(frame)
    return TelemetryPage(
        items=rows, count=len(rows), limit=limit, feature_names=list(frame.feature_names)
    )
