"""Customers over the API: CRUD, assets on sites, and a customer token that sees only its own.

Two customers: ACME (strategic) owns pump-1 with the seeded alert and work order; Bolt
(standard) owns bolt-mixer-7 with an alert and work order of its own. Every string that
names something of Bolt's contains "bolt", so a leak shows up as that word in a body.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.db.models import Alert, WorkOrder
from cloud.domain import open_from_alert, seed_fleet, transition, upsert_alert
from cloud.domain.tokens import create_token
from cloud.telemetry import SqliteTelemetryStore
from ironwatch.wire import FeatureRecord

from .conftest import NOW, Api, build

V1 = "/api/v1"

CUSTOMERS: dict[str, Any] = {
    "customers": [
        {"id": "acme", "name": "ACME Steel", "tier": "strategic",
         "contacts": [{"name": "Li Wei", "email": "li@acme.example", "role": "plant_manager"}]},
        {"id": "bolt", "name": "Bolt Foods", "tier": "standard",
         "contacts": [{"name": "Bolt Boss", "email": "boss@bolt.example"}]},
    ],
    "sites": [
        {"id": "acme-shanghai", "customer_id": "acme", "name": "Shanghai",
         "timezone": "Asia/Shanghai"},
        {"id": "bolt-berlin", "customer_id": "bolt", "name": "Berlin bolt works",
         "timezone": "Europe/Berlin"},
    ],
    "gateways": [{"id": "gw-1"}, {"id": "gw-2"}],
    "assets": [
        {"id": "pump-1", "gateway_id": "gw-1", "kind": "pump", "site_id": "acme-shanghai"},
        {"id": "bolt-mixer-7", "gateway_id": "gw-2", "name": "bolt mixer",
         "site_id": "bolt-berlin"},
    ],
}


def _records(asset_id: str, n: int, seq0: int) -> list[FeatureRecord]:
    return [
        FeatureRecord(seq=seq0 + i, asset_id=asset_id, point="de", ts=NOW + timedelta(seconds=i),
                      window_s=1.0, features={"velocity_rms_mms": 1.0})
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteTelemetryStore]:
    s = SqliteTelemetryStore(tmp_path / "telemetry.db")
    s.write("gw-1", _records("pump-1", 3, 0))
    s.write("gw-2", _records("bolt-mixer-7", 5, 0))
    try:
        yield s
    finally:
        s.close()


class Ids(dict[str, Any]):
    """Bolt's (the other customer's) object ids, by path parameter name."""


@pytest.fixture
def capi(store: SqliteTelemetryStore) -> Iterator[tuple[Api, Ids]]:
    api = build(telemetry_store=store)
    with api.session_factory() as session:
        seed_fleet(session, CUSTOMERS)
        alert = upsert_alert(
            session, asset_id="bolt-mixer-7", failure_mode="imbalance", severity="alarm",
            score=5.0, evidence={}, model="m", model_version="1", rul_hours=None, now=NOW,
            confidence=0.9,
        )
        wo = open_from_alert(session, alert, now=NOW)
        assert wo is not None
        for role, customer in (("acme", "acme"), ("bolt", "bolt")):
            _, text = create_token(session, name=f"{role} portal", role="customer", actor="t",
                                   now=NOW, customer_id=customer)
            api.headers[role] = {"Authorization": f"Bearer {text}"}
        session.flush()
        bolt = Ids(
            asset_id="bolt-mixer-7", alert_id=alert.id, work_order_id=wo.id,
            customer_id="bolt", site_id="bolt-berlin",
            contact_id=next(c.id for c in wo.asset.site.customer.contacts),  # type: ignore[union-attr]
            gateway_id="gw-2",
        )
        session.commit()
    yield api, bolt
    api.session_factory.kw["bind"].dispose()


def _get(api: Api, role: str, url: str) -> Any:
    return api.request(role, "GET", url)


def test_a_customer_lists_only_its_own_assets_alerts_and_work_orders(
    capi: tuple[Api, Ids],
) -> None:
    api, _ = capi
    assets = _get(api, "acme", f"{V1}/assets").json()
    assert [a["id"] for a in assets["items"]] == ["pump-1"]
    assert assets["items"][0]["customer"] == {"id": "acme", "name": "ACME Steel",
                                              "tier": "strategic"}
    assert assets["items"][0]["tier"] == "strategic"
    alerts = _get(api, "acme", f"{V1}/alerts").json()
    assert {a["asset_id"] for a in alerts["items"]} == {"pump-1"}
    wos = _get(api, "acme", f"{V1}/work-orders").json()
    assert {w["asset_id"] for w in wos["items"]} == {"pump-1"}
    # Filtering for the other customer's machine finds nothing rather than an error.
    assert _get(api, "acme", f"{V1}/alerts?asset_id=bolt-mixer-7").json()["total"] == 0
    # The service desk still sees the whole fleet, and can filter by customer.
    everything = {a["id"] for a in _get(api, "service_desk", f"{V1}/assets").json()["items"]}
    assert {"pump-1", "bolt-mixer-7", "fan-1", "motor-2"} <= everything
    bolts = _get(api, "service_desk", f"{V1}/assets?customer_id=bolt").json()["items"]
    assert [a["id"] for a in bolts] == ["bolt-mixer-7"]
    strategic = _get(api, "engineer", f"{V1}/assets?customer_tier=strategic").json()["items"]
    # pump-1's own field says standard now; the customer's tier is what counts.
    assert [a["id"] for a in strategic] == ["pump-1"]


def test_another_customers_asset_is_not_found_exactly_like_a_missing_one(
    capi: tuple[Api, Ids],
) -> None:
    api, _ = capi
    theirs = _get(api, "acme", f"{V1}/assets/bolt-mixer-7")
    missing = _get(api, "acme", f"{V1}/assets/no-such-7")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["message"].replace("bolt-mixer-7", "X") == (
        missing.json()["error"]["message"].replace("no-such-7", "X")
    )
    assert _get(api, "bolt", f"{V1}/assets/bolt-mixer-7").status_code == 200


def test_telemetry_of_another_customer_is_not_found_and_counts_are_the_customers_own(
    capi: tuple[Api, Ids],
) -> None:
    api, _ = capi
    assert _get(api, "acme", f"{V1}/telemetry?asset_id=bolt-mixer-7").status_code == 404
    mixed = _get(api, "acme", f"{V1}/telemetry?asset_id=pump-1&asset_id=bolt-mixer-7")
    assert mixed.status_code == 404
    own = _get(api, "acme", f"{V1}/telemetry?asset_id=pump-1")
    assert own.status_code == 200 and own.json()["count"] == 3
    assert _get(api, "acme", f"{V1}/telemetry/count").json()["count"] == 3
    assert _get(api, "engineer", f"{V1}/telemetry/count").json()["count"] == 8


def _fill(path: str, values: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), 1)), path)


def test_every_get_route_keeps_another_customers_objects_hidden(capi: tuple[Api, Ids]) -> None:
    """Black box: every GET operation of the OpenAPI document, called with ACME's token and
    Bolt's ids (in the path, and as query filters where the route takes them)."""
    api, bolt = capi
    spec = _get(api, "acme", f"{V1}/openapi.json").json()
    never = {k: (999_999 if isinstance(v, int) else f"no-such-{k}") for k, v in bolt.items()}
    walked = 0
    for path, item in spec["paths"].items():
        op = item.get("get")
        if op is None:
            continue
        params = {p["name"]: p for p in op.get("parameters", [])}
        path_params = [n for n, p in params.items() if p["in"] == "path"]
        url = _fill(path, bolt)
        filters = [n for n, p in params.items() if p["in"] == "query" and n in bolt]
        queries = [""] + [f"?{n}={bolt[n]}" for n in filters]
        for query in queries:
            response = _get(api, "acme", url + query)
            walked += 1
            where = f"GET {url}{query}"
            assert response.status_code < 500, f"{where}: {response.text}"
            if response.status_code < 300:
                assert "bolt" not in response.text.lower(), f"{where} leaks: {response.text}"
                assert not path_params, f"{where} answered another customer's object"
            elif path_params and response.status_code == 404:
                # Not found, word for word as for an id that never existed.
                ghost = _get(api, "acme", _fill(path, never) + query)
                assert ghost.status_code == 404, where
                hide = sorted({str(v) for v in (*bolt.values(), *never.values())}, key=len)
                pattern = "|".join(map(re.escape, reversed(hide)))  # longest first
                mine, theirs = (
                    re.sub(pattern, "X", r.json()["error"]["message"])
                    for r in (response, ghost)
                )
                assert mine == theirs, where
            else:
                assert response.status_code in (403, 404, 422), f"{where}: {response.text}"
    assert walked > 20


def test_a_customer_reports_a_fault_and_it_becomes_a_work_order(capi: tuple[Api, Ids]) -> None:
    api, _ = capi
    body = {"asset_id": "pump-1", "description": "Loud knocking since this morning\nand hot"}
    created = api.request("acme", "POST", f"{V1}/fault-reports", json=body)
    assert created.status_code == 201, created.text
    wo = created.json()
    assert wo["source"] == "customer"
    assert wo["failure_mode"] == "customer_report"
    assert wo["priority"] == "P2"
    assert wo["title"].endswith("Loud knocking since this morning")
    # Strategic customer: the response is due within the tier's hour.
    assert wo["respond_by"] == (NOW + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    again = api.request("acme", "POST", f"{V1}/fault-reports", json=body)
    assert again.status_code == 409
    assert again.json()["error"]["details"]["work_order_id"] == wo["id"]
    listed = _get(api, "service_desk", f"{V1}/work-orders?source=customer").json()["items"]
    assert [w["id"] for w in listed] == [wo["id"]]
    theirs = api.request("acme", "POST", f"{V1}/fault-reports",
                         json={"asset_id": "bolt-mixer-7", "description": "x"})
    assert theirs.status_code == 404
    blank = api.request("acme", "POST", f"{V1}/fault-reports",
                        json={"asset_id": "pump-1", "description": "   "})
    assert blank.status_code == 422


def test_a_customer_rates_a_finished_work_order_once(capi: tuple[Api, Ids]) -> None:
    api, bolt = capi
    with api.session_factory() as session:
        wo_id = session.query(WorkOrder.id).filter(WorkOrder.asset_id == "pump-1").scalar()
    rate = {"satisfaction": 4, "feedback": "Quick and tidy"}
    early = api.request("acme", "POST", f"{V1}/work-orders/{wo_id}/rating", json=rate)
    assert early.status_code == 409
    assert early.json()["error"]["details"]["allowed_states"] == ["done", "closed"]
    with api.session_factory() as session:
        for state in ("in_progress", "done", "closed"):
            transition(session, wo_id, state, actor="desk", now=NOW)
        session.commit()
    bad = api.request("acme", "POST", f"{V1}/work-orders/{wo_id}/rating",
                      json={"satisfaction": 6})
    assert bad.status_code == 422
    rated = api.request("acme", "POST", f"{V1}/work-orders/{wo_id}/rating", json=rate)
    assert rated.status_code == 200, rated.text
    assert (rated.json()["satisfaction"], rated.json()["feedback"]) == (4, "Quick and tidy")
    history = _get(api, "acme", f"{V1}/work-orders/{wo_id}/history").json()
    assert history[-1]["kind"] == "rated" and history[-1]["actor"] == "token:acme portal"
    twice = api.request("acme", "POST", f"{V1}/work-orders/{wo_id}/rating", json=rate)
    assert twice.status_code == 409
    other = api.request("acme", "POST", f"{V1}/work-orders/{bolt['work_order_id']}/rating",
                        json=rate)
    assert other.status_code == 404


def test_customer_crud_for_the_service_desk(capi: tuple[Api, Ids]) -> None:
    api, _ = capi
    desk = "service_desk"
    new = {"id": "cobalt", "name": "Cobalt Mining", "tier": "key"}
    assert api.request(desk, "POST", f"{V1}/customers", json=new).status_code == 201
    assert api.request(desk, "POST", f"{V1}/customers", json=new).status_code == 409
    site = {"id": "cobalt-perth", "customer_id": "cobalt", "name": "Perth",
            "timezone": "Australia/Perth", "region": "au-west"}
    assert api.request(desk, "POST", f"{V1}/sites", json=site).status_code == 201
    bad_zone = api.request(desk, "POST", f"{V1}/sites",
                           json={**site, "id": "cobalt-x", "timezone": "Perth"})
    assert bad_zone.status_code == 422 and "Perth" in bad_zone.text
    contact = {"name": "Ana", "email": "ana@cobalt.example", "role": "maintenance"}
    made = api.request(desk, "POST", f"{V1}/customers/cobalt/contacts", json=contact)
    assert made.status_code == 201
    bad_mail = api.request(desk, "POST", f"{V1}/customers/cobalt/contacts",
                           json={**contact, "email": "not-an-address"})
    assert bad_mail.status_code == 422
    got = _get(api, "engineer", f"{V1}/customers/cobalt").json()
    assert got["sites"][0]["timezone"] == "Australia/Perth"
    assert got["contacts"][0]["email"] == "ana@cobalt.example"
    patched = api.request(desk, "PATCH", f"{V1}/customers/cobalt", json={"tier": "strategic"})
    assert patched.json()["tier"] == "strategic"
    moved = api.request("admin", "PATCH", f"{V1}/assets/fan-1", json={"site_id": "cobalt-perth"})
    assert moved.status_code == 200
    assert moved.json()["customer"]["id"] == "cobalt" and moved.json()["tier"] == "strategic"
    refused = api.request(desk, "DELETE", f"{V1}/customers/cobalt")
    assert refused.status_code == 409 and "asset" in refused.json()["error"]["message"]
    assert api.request(desk, "DELETE", f"{V1}/sites/cobalt-perth").status_code == 409
    api.request("admin", "PATCH", f"{V1}/assets/fan-1", json={"site_id": None})
    assert api.request(desk, "DELETE", f"{V1}/customers/cobalt").status_code == 204
    assert _get(api, desk, f"{V1}/customers/cobalt").status_code == 404
    assert _get(api, desk, f"{V1}/sites/cobalt-perth").status_code == 404
    # Customers may read their own record but change nothing.
    assert api.request("acme", "POST", f"{V1}/customers", json=new).status_code == 403
    assert api.request("acme", "PATCH", f"{V1}/customers/acme", json={"tier": "key"}
                       ).status_code == 403
    assert [c["id"] for c in _get(api, "acme", f"{V1}/customers").json()["items"]] == ["acme"]


def test_customer_tokens_need_a_customer_and_only_they_may_have_one(
    capi: tuple[Api, Ids],
) -> None:
    api, _ = capi
    no_customer = api.request("admin", "POST", f"{V1}/tokens",
                              json={"name": "p", "role": "customer"})
    assert no_customer.status_code == 422
    engineer_with = api.request("admin", "POST", f"{V1}/tokens",
                                json={"name": "p", "role": "engineer", "customer_id": "acme"})
    assert engineer_with.status_code == 422
    unknown = api.request("admin", "POST", f"{V1}/tokens",
                          json={"name": "p", "role": "customer", "customer_id": "nobody"})
    assert unknown.status_code == 404
    made = api.request("admin", "POST", f"{V1}/tokens",
                       json={"name": "p", "role": "customer", "customer_id": "acme"})
    assert made.status_code == 201 and made.json()["customer_id"] == "acme"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/alerts/{alert_id}/acknowledge"),
        ("POST", "/work-orders/{work_order_id}/transitions"),
        ("PATCH", "/work-orders/{work_order_id}"),
        ("GET", "/assets/{asset_id}/maintenance-plans"),
        ("GET", "/kpis"),
        ("GET", "/gateways/gw-1"),
    ],
)
def test_what_a_customer_may_not_do_is_forbidden_whoever_owns_the_object(
    capi: tuple[Api, Ids], method: str, url: str
) -> None:
    api, bolt = capi
    with api.session_factory() as session:
        own_alert = session.query(Alert.id).filter(Alert.asset_id == "pump-1").scalar()
        own_wo = session.query(WorkOrder.id).filter(WorkOrder.asset_id == "pump-1").scalar()
    own = {"asset_id": "pump-1", "alert_id": own_alert, "work_order_id": own_wo}
    for ids in (own, bolt):
        response = api.request("acme", method, _fill(f"{V1}{url}", ids), json={})
        assert response.status_code == 403, response.text


@pytest.mark.parametrize(
    "url",
    [
        "/kpis?asset_id=pump-1&asset_id=fan-1",
        # Filters repeat as "any of" (test_lifecycle_api); paging takes one value.
        "/assets?limit=5&limit=10",
        "/customers?offset=0&offset=1",
        "/alerts/1?verbose=1&verbose=2",
    ],
)
def test_a_single_valued_query_parameter_given_twice_is_refused(
    capi: tuple[Api, Ids], url: str
) -> None:
    api, _ = capi
    response = _get(api, "admin", f"{V1}{url}")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


def test_a_list_query_parameter_may_repeat(capi: tuple[Api, Ids]) -> None:
    api, _ = capi
    response = _get(api, "engineer", f"{V1}/telemetry?asset_id=pump-1&asset_id=bolt-mixer-7")
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 8
