"""Property-based tests from the OpenAPI schema: whatever the input, never a server error.

Runs every schemathesis check except two:
- `positive_data_acceptance`: some rules span fields (only gateway tokens name a gateway)
  or the database (the asset must exist), and JSON Schema cannot say so, so a schema-valid
  request may rightly get a 404/409/422;
- `negative_data_rejection`: some "invalid" requests are byte for byte valid ones on the
  wire (a one-item array for a one-value parameter is `?name=value`; an extra parameter
  with an empty name vanishes), so their 200 is right. Refusals are asserted by the
  dedicated tests below and in test_bad_input.py / test_customers_api.py (a repeated
  one-value parameter is a 422). Invalid requests are still sent: they must never be a 5xx.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import Case as GenericCase
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from cloud.api import build_api
from cloud.db import Base, make_engine, make_session_factory
from cloud.settings import load_settings
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.wire import FeatureRecord

from .conftest import ADMIN_TOKEN, seed

# A generated request of any operation. The test function's text seeds the derandomised
# examples, so it stays as it is and the type argument lives here.
Case = GenericCase[Any]

pytestmark = pytest.mark.slow


def _build() -> tuple[FastAPI, SqliteTelemetryStore, Path]:
    # A database of its own (the fuzzer creates, edits and deletes freely) and a real
    # embedded telemetry store, so /telemetry is exercised end to end.
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        seed(session)
        session.commit()
    workdir = Path(tempfile.mkdtemp(prefix="ironwatch-fuzz-"))
    store = SqliteTelemetryStore(workdir / "features.db")
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    store.write(
        "gw-1",
        [
            FeatureRecord(
                seq=i,
                asset_id="pump-1",
                point="de_radial",
                ts=t0 + timedelta(seconds=i),
                window_s=1.0,
                features={"velocity_rms_mms": 1.0 + i / 10},
            )
            for i in range(20)
        ],
    )
    app = build_api(load_settings(admin_token=ADMIN_TOKEN), factory, telemetry_store=store)
    return app, store, workdir


# The schema is loaded at collection (schemathesis' pytest integration needs it then);
# schemathesis.pytest.from_fixture would defer it but does not work with pytest 9.
_APP, _STORE, _WORKDIR = _build()
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    # The document needs a token like every endpoint but health (docs/api.md).
    schema = schemathesis.openapi.from_asgi(
        "/api/v1/openapi.json", _APP, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    _STORE.close()
    shutil.rmtree(_WORKDIR, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    # Same examples every run: a failure here is a regression, not bad luck.
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_never_fails_with_a_server_error(case: Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )


# Values at and beyond the bounds of every query parameter: dates the telemetry store's
# nanosecond clock cannot hold, integers past a database column. Generated examples rarely
# reach them, so each operation gets them explicitly.
_DATE_EDGES = (
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "2262-04-11T23:47:17Z",
)
_INT_EDGES = (2**31, 2**63, 10**30, -(2**63), -1)
_REQUIRED = {"asset_id": "pump-1"}


def _edge_cases() -> list[tuple[str, str, str, object]]:
    cases: list[tuple[str, str, str, object]] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if operation.path_parameters:
            continue
        for parameter in operation.query:
            spec = parameter.definition.get("schema", {})
            # A repeatable filter is an array: its bounds are its items'.
            spec = spec.get("items", spec) if spec.get("type") == "array" else spec
            kinds = {spec.get("type"), spec.get("format")} | {
                s.get("format") or s.get("type") for s in spec.get("anyOf", [])
            }
            edges: tuple[object, ...] = ()
            if "date-time" in kinds:
                edges = _DATE_EDGES
            elif "integer" in kinds:
                edges = _INT_EDGES
            cases.extend(
                (operation.method.upper(), operation.path, parameter.name, v) for v in edges
            )
    return cases


@pytest.mark.parametrize(("method", "path", "name", "value"), _edge_cases())
def test_out_of_range_query_values_are_422(
    method: str, path: str, name: str, value: object
) -> None:
    query = {k: v for k, v in _REQUIRED.items() if k != name} if path.endswith("/telemetry") else {}
    case = schema[path][method].Case(query={**query, name: value})
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        excluded_checks=[positive_data_acceptance],
    )
    assert response.status_code == 422, (path, name, value, response.text)
    assert response.json()["error"]["code"] == "validation_error"


def test_the_edge_cases_cover_the_bounded_parameters() -> None:
    covered = {(path, name) for _, path, name, _ in _edge_cases()}
    for expected in (
        ("/api/v1/telemetry", "start"),
        ("/api/v1/telemetry", "end"),
        ("/api/v1/telemetry", "limit"),
        ("/api/v1/kpis", "start"),
        ("/api/v1/alerts", "opened_after"),
        ("/api/v1/alerts", "offset"),
        ("/api/v1/escalations", "work_order_id"),
    ):
        assert expected in covered
