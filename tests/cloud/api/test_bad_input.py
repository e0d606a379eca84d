"""Bad input gets a 422 in the error model, never a 5xx; the telemetry API answers in bounded
pages that carry only the features asked for."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.testclient import TestClient  # imported first, warning handled, by conftest

from cloud.api.errors import install_error_handlers, reject_unknown_query_params
from cloud.api.routes._common import Limit
from cloud.api.schemas.queries import PageQuery
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.wire import FeatureRecord

from .conftest import Api, build

V1 = "/api/v1"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _features(i: int, names: int) -> dict[str, float | None]:
    features: dict[str, float | None] = {f"f{i}_{k}_hz": float(i + k) for k in range(names)}
    features["velocity_rms_mms"] = 1.0 + i
    return features


def _records(gateway_seq_start: int, n: int, *, names: int = 1) -> list[FeatureRecord]:
    # Three records share each timestamp (two assets, two points), so pages split ties.
    return [
        FeatureRecord(
            seq=gateway_seq_start + i,
            asset_id="pump-1" if i % 3 else "fan-1",
            point="de" if i % 2 else "nde",
            ts=T0 + timedelta(seconds=i // 3),
            window_s=1.0,
            features=_features(i, names),
        )
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteTelemetryStore]:
    s = SqliteTelemetryStore(tmp_path / "telemetry.db")
    s.write("gw-1", _records(0, 40))
    s.write("gw-2", _records(0, 20))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def tapi(store: SqliteTelemetryStore) -> Iterator[Api]:
    built = build(telemetry_store=store)
    yield built
    built.session_factory.kw["bind"].dispose()


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


TELEMETRY = f"{V1}/telemetry?asset_id=pump-1"
BAD_REQUESTS = [
    # out-of-range and malformed times (the first was a 503 before)
    f"{TELEMETRY}&start=9999-12-31T23:59:59Z",
    f"{TELEMETRY}&end=0001-01-01T00:00:00Z",
    f"{TELEMETRY}&start=1969-12-31T23:59:59Z",
    f"{TELEMETRY}&start=2262-04-12T00:00:00Z",
    f"{TELEMETRY}&start=10000-01-01T00:00:00Z",
    f"{TELEMETRY}&start=2026-03-02T00:00:00",
    f"{TELEMETRY}&start=1700000000",
    # page sizes and lists
    f"{TELEMETRY}&limit=0",
    f"{TELEMETRY}&limit=1001",
    f"{TELEMETRY}&limit=99999999999999999999999999",
    f"{TELEMETRY}&limit=nan",
    f"{V1}/telemetry?" + "&".join(f"asset_id=a{i}" for i in range(51)),
    f"{TELEMETRY}&" + "&".join(f"feature=f{i}" for i in range(101)),
    f"{TELEMETRY}&feature=Bad-Name",
    f"{V1}/telemetry",
    f"{V1}/telemetry?asset_id=bad/id",
    # cursors not made by the API
    f"{TELEMETRY}&cursor=not-base64-!",
    f"{TELEMETRY}&cursor={_cursor('garbage')}",
    f"{TELEMETRY}&cursor={_cursor('1:gw-1:2')}",
    f"{TELEMETRY}&cursor={_cursor('99999999999999999999999:gw-1:1:1')}",
    f"{TELEMETRY}&cursor={_cursor('1772438400000000000:gw/1:1:1')}",
    f"{TELEMETRY}&cursor={_cursor('1772438400000000000:gw-1:-1:1')}",
    f"{TELEMETRY}&cursor={_cursor('1772438400000000000:gw-1:1:0')}",
    f"{TELEMETRY}&cursor={_cursor('1772438400000000000:gw-1:' + str(2**63) + ':1')}",
    # unknown parameters, with and without a query model
    f"{TELEMETRY}&limt=5",
    f"{V1}/telemetry/count?asset=pump-1",
    f"{V1}/alerts/1?verbose=1",
    f"{V1}/health?x=1",
    # other endpoints' bounds
    f"{V1}/kpis?start=9999-12-31T23:59:59Z",
    f"{V1}/kpis?end=0001-01-01T00:00:00Z",
    f"{V1}/kpis?end=0001-01-01T00:00:00%2B14:00",
    f"{V1}/alerts?opened_after=9999-12-31T23:59:59Z",
    f"{V1}/alerts?limit=501",
    f"{V1}/alerts?offset=2147483648",
    f"{V1}/alerts?offset=-1",
    f"{V1}/alerts/2147483648",
    f"{V1}/work-orders?created_before=0001-01-01T00:00:00Z",
    f"{V1}/escalations?work_order_id=2147483648",
    f"{V1}/escalations?work_order_id=inf",
    f"{V1}/escalations?acknowledged=maybe",
    f"{V1}/verdicts?since=99999-01-01T00:00:00Z",
    f"{V1}/webhooks/deliveries?state=lost",
    f"{V1}/assets?kind=rocket",
    f"{V1}/assets?gateway_id=",
    f"{V1}/gateways?limit=100000",
    f"{V1}/tokens?offset=1e3",
    f"{V1}/dead-letters?limit=0",
    f"{V1}/dead-letters?reason=DROP%20TABLE",
    f"{V1}/dead-letters?gateway_id=gw/1",
    f"{V1}/dead-letters?gateway=gw-1",
    f"{V1}/gateways/gw-1/events?limit=501",
    f"{V1}/gateways/gw-1/events?offset=2147483648",
    f"{V1}/gateways/gw-1/events?since=2026-03-02T00:00:00Z",
    f"{V1}/ingest/stats?verbose=1",
]


@pytest.mark.parametrize("url", BAD_REQUESTS)
def test_bad_query_input_is_a_422_in_the_error_model(tapi: Api, url: str) -> None:
    response = tapi.request("admin", "GET", url)
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["message"]


@pytest.mark.parametrize(
    ("method", "url", "body", "code"),
    [
        ("PATCH", "/work-orders/1", '{"planned_for": "0001-01-01T00:00:00Z"}', "validation_error"),
        ("PATCH", "/work-orders/1", '{"planned_for": "9999-12-31T23:59:59Z"}', "validation_error"),
        (
            "POST",
            "/tokens",
            '{"name": "x", "role": "engineer", "expires_at": "9999-12-31Z"}',
            "validation_error",
        ),
        ("POST", "/assets/pump-1/running-hours", '{"add_hours": 1e400}', "validation_error"),
        (
            "POST",
            "/assets/pump-1/running-hours",
            '{"add_hours": 1' + "0" * 400 + "}",
            "validation_error",
        ),
        # More digits than Python's JSON reader takes: the body is unreadable (400).
        (
            "POST",
            "/assets/pump-1/running-hours",
            '{"add_hours": 1' + "0" * 5000 + "}",
            "bad_request",
        ),
    ],
)
def test_bad_body_input_is_a_4xx(tapi: Api, method: str, url: str, body: str, code: str) -> None:
    headers = {"Content-Type": "application/json", **tapi.as_("admin")}
    response = tapi.client.request(method, V1 + url, content=body, headers=headers)
    assert response.status_code == (400 if code == "bad_request" else 422), response.text
    assert response.json()["error"]["code"] == code


def test_the_bounds_themselves_are_accepted(tapi: Api) -> None:
    for url in (
        f"{TELEMETRY}&start=1970-01-01T00:00:00Z&end=2261-12-31T23:59:59Z&limit=1000",
        f"{V1}/kpis?start=1970-01-01T00:00:00Z&end=2261-12-31T23:59:59Z",
        f"{V1}/alerts?opened_after=1970-01-01T00:00:00Z&limit=500&offset=2147483647",
    ):
        response = tapi.request("admin", "GET", url)
        assert response.status_code == 200, (url, response.text)


def _all_pages(tapi: Api, url: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        response = tapi.request("engineer", "GET", next_url)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["count"] == len(body["items"]) <= body["limit"]
        rows.extend(body["items"])
        next_url = body["next"]
        assert (next_url is None) == (body["next_cursor"] is None)
        pages += 1
        assert pages < 100
    return rows


@pytest.mark.parametrize("limit", [1, 2, 4, 7, 1000])
def test_pages_cover_every_record_once_in_order(tapi: Api, limit: int) -> None:
    rows = _all_pages(tapi, f"{V1}/telemetry?asset_id=pump-1&asset_id=fan-1&limit={limit}")
    keys = [(r["ts"], r["gateway_id"], r["seq"]) for r in rows]
    assert len(keys) == 60 == len(set(keys))
    assert keys == sorted(keys)


def test_pages_keep_the_filters_of_the_first(tapi: Api) -> None:
    url = (
        f"{V1}/telemetry?asset_id=pump-1&point=de&start=2026-03-02T08:00:02Z"
        "&end=2026-03-02T08:00:10Z&feature=velocity_rms_mms&limit=3"
    )
    rows = _all_pages(tapi, url)
    assert rows and all(r["asset_id"] == "pump-1" and r["point"] == "de" for r in rows)
    assert all("2026-03-02T08:00:02Z" <= r["ts"] < "2026-03-02T08:00:10Z" for r in rows)
    assert all(list(r["features"]) == ["velocity_rms_mms"] for r in rows)
    first = tapi.request("engineer", "GET", url).json()
    assert first["next"].startswith("/api/v1/telemetry?") and "point=de" in first["next"]


def test_only_the_features_asked_for_or_each_rows_own(tmp_path: Path) -> None:
    # 200 records, each with 50 feature names of its own: 10,000 names in all.
    store = SqliteTelemetryStore(tmp_path / "wide.db")
    store.write("gw-1", _records(0, 200, names=50))
    tapi = build(telemetry_store=store)
    try:
        wide = tapi.request("engineer", "GET", f"{V1}/telemetry?asset_id=pump-1&limit=100")
        assert wide.status_code == 200
        body = wide.json()
        assert body["count"] == 100
        # A row lists the 51 values it has, not thousands of nulls for other rows' names.
        assert all(len(r["features"]) == 51 for r in body["items"])
        assert all(v is not None for r in body["items"] for v in r["features"].values())
        assert len(wide.content) < 300_000
        asked = tapi.request(
            "engineer",
            "GET",
            f"{V1}/telemetry?asset_id=pump-1&limit=100&feature=velocity_rms_mms&feature=f1_0_hz",
        ).json()
        assert asked["feature_names"] == ["velocity_rms_mms", "f1_0_hz"]
        assert all(list(r["features"]) == ["velocity_rms_mms", "f1_0_hz"] for r in asked["items"])
        assert asked["items"][0]["features"]["f1_0_hz"] == 1.0
        assert asked["items"][1]["features"]["f1_0_hz"] is None
    finally:
        store.close()
        tapi.session_factory.kw["bind"].dispose()


def test_unknown_parameters_are_refused_however_a_route_takes_its_query() -> None:
    router = APIRouter(dependencies=[Depends(reject_unknown_query_params)])

    @router.get("/plain")
    def plain(limit: Limit = 50) -> int:
        return limit

    @router.get("/model")
    def model(q: Annotated[PageQuery, Query()]) -> int:
        return q.limit

    @router.get("/none")
    def none() -> int:
        return 0

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    client = TestClient(app)
    for path in ("/plain", "/model"):
        assert client.get(f"{path}?limit=7").json() == 7
        refused = client.get(f"{path}?limit=7&limt=8")
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "validation_error"
    assert client.get("/plain?limt=8").json()["error"]["details"]["allowed"] == ["limit"]
    assert client.get("/none").json() == 0
    assert client.get("/none?x=1").status_code == 422
