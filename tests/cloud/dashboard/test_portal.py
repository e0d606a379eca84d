"""The customer portal over HTTP: a customer signs in, sees its own machines only, reports a
fault and rates finished work; another customer's ids are "not found" on every page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cloud.db.models import Alert, ApiToken, Asset, WorkOrder
from cloud.domain import seed_fleet as seed_customers
from cloud.domain.tokens import create_token, revoke_token

from .conftest import LOCAL, DashboardClient, Fleet, make_app

# ACME (strategic) owns the pump and the fan of the dashboard's test fleet; Bolt owns the
# line motor. Bolt's things all carry "bolt" or "Line motor" in their names.
CUSTOMERS: dict[str, Any] = {
    "customers": [
        {"id": "acme", "name": "ACME Steel", "tier": "strategic"},
        {"id": "bolt", "name": "Bolt Foods", "tier": "standard"},
    ],
    "sites": [
        {"id": "acme-shanghai", "customer_id": "acme", "name": "Shanghai works",
         "timezone": "Asia/Shanghai"},
        {"id": "bolt-berlin", "customer_id": "bolt", "name": "Bolt Berlin",
         "timezone": "Europe/Berlin"},
    ],
}
SITES = {"pump-01": "acme-shanghai", "fan-02": "acme-shanghai", "motor-03": "bolt-berlin"}


def add_customers(fleet: Fleet) -> dict[str, str]:
    """Put the fleet's assets on the customers' sites; a customer token for each."""
    tokens: dict[str, str] = {}
    with fleet.session_factory() as s:
        seed_customers(s, CUSTOMERS)
        for asset_id, site_id in SITES.items():
            asset = s.get(Asset, asset_id)
            assert asset is not None
            asset.site_id = site_id
        for customer in ("acme", "bolt"):
            _, tokens[customer] = create_token(
                s, name=f"{customer}-portal", role="customer", actor="test", now=fleet.now,
                customer_id=customer,
            )
        s.commit()
    return tokens


@pytest.fixture
def tokens(fleet: Fleet) -> dict[str, str]:
    return add_customers(fleet)


def _signed_in(fleet: Fleet, token: str) -> DashboardClient:
    client = DashboardClient(make_app(fleet), client=("203.0.113.7", 40000))
    response = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/portal"
    return client


@pytest.fixture
def acme(fleet: Fleet, tokens: dict[str, str]) -> Iterator[DashboardClient]:
    with _signed_in(fleet, tokens["acme"]) as client:
        yield client


def _wo_id(fleet: Fleet, asset_id: str, state: str | None = None) -> int:
    with fleet.session_factory() as s:
        query = select(WorkOrder.id).where(WorkOrder.asset_id == asset_id)
        if state is not None:
            query = query.where(WorkOrder.state == state)
        found = s.scalars(query).first()
        assert found is not None
        return found


def test_the_portal_shows_the_customers_machines_and_work_only(
    acme: DashboardClient, fleet: Fleet
) -> None:
    page = acme.get("/portal")
    assert page.status_code == 200
    assert "ACME Steel" in page.text
    assert "Cooling pump 1" in page.text and "Exhaust fan 2" in page.text
    assert "Line motor" not in page.text and "Bolt" not in page.text
    assert "Inspect misalignment" not in page.text  # the motor's work order
    # The pump's open P1 shows its progress; the fan's finished service can be rated.
    assert "Inspect bearing outer race" in page.text
    assert 'class="progress"' in page.text
    assert 'action="/portal/work-orders/' in page.text and 'name="satisfaction"' in page.text


def test_another_customers_machine_and_work_order_are_not_found(
    acme: DashboardClient, fleet: Fleet
) -> None:
    theirs = acme.get("/portal/assets/motor-03")
    missing = acme.get("/portal/assets/motor-99")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text.replace("motor-03", "X") == missing.text.replace("motor-99", "X")
    bolt_wo = _wo_id(fleet, "motor-03")
    assert acme.get(f"/portal/work-orders/{bolt_wo}").status_code == 404
    rated = acme.post(f"/portal/work-orders/{bolt_wo}/rating", data={"satisfaction": "5"})
    assert rated.status_code == 404
    report = acme.post("/portal/fault-reports",
                       data={"asset_id": "motor-03", "description": "broken"})
    assert report.status_code == 422 and "Choose one of your machines" in report.text
    with fleet.session_factory() as s:
        assert s.scalars(select(WorkOrder).where(WorkOrder.source == "customer")).all() == []
    assert acme.get("/portal/assets/pump-01").status_code == 200


@pytest.mark.parametrize("path", ["/assets/motor-03", "/assets/pump-01", "/work-orders",
                                  "/ingestion", "/alerts/{alert}"])
def test_a_customer_gets_no_staff_page_whatever_the_id(
    acme: DashboardClient, fleet: Fleet, path: str
) -> None:
    response = acme.get(path.format(alert=fleet.alert_id), follow_redirects=False)
    assert response.status_code == 404
    assert "Cooling pump" not in response.text and "Line motor" not in response.text
    root = acme.get("/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (303, "/portal")


def test_a_customer_reports_a_fault_from_the_portal(acme: DashboardClient, fleet: Fleet) -> None:
    response = acme.post(
        "/portal/fault-reports",
        data={"asset_id": "fan-02", "description": "Rattling noise at start-up"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    with fleet.session_factory() as s:
        wo = s.scalars(select(WorkOrder).where(WorkOrder.source == "customer")).one()
        assert (wo.asset_id, wo.failure_mode, wo.priority) == ("fan-02", "customer_report", "P2")
        assert wo.description == "Rattling noise at start-up"
        assert wo.created_by == "token:acme-portal"
    assert response.headers["location"] == f"/portal/work-orders/{wo.id}?done=reported"
    page = acme.get(response.headers["location"])
    assert "Your report is a work order now" in page.text
    assert "Rattling noise at start-up" in page.text
    twice = acme.post("/portal/fault-reports",
                      data={"asset_id": "fan-02", "description": "still rattling"})
    assert twice.status_code == 422 and f"work order {wo.id}" in twice.text


def test_a_customer_rates_a_finished_work_order_once(acme: DashboardClient, fleet: Fleet) -> None:
    done = _wo_id(fleet, "fan-02", state="done")
    bad = acme.post(f"/portal/work-orders/{done}/rating", data={"satisfaction": "9"})
    assert bad.status_code == 422 and "1 to 5" in bad.text
    ok = acme.post(f"/portal/work-orders/{done}/rating",
                   data={"satisfaction": "4", "feedback": "Fast, but call ahead next time"},
                   follow_redirects=False)
    assert ok.status_code == 303
    with fleet.session_factory() as s:
        wo = s.get(WorkOrder, done)
        assert wo is not None
        assert (wo.satisfaction, wo.feedback) == (4, "Fast, but call ahead next time")
    assert ok.headers["location"] == f"/portal/work-orders/{done}?done=rated"
    page = acme.get(ok.headers["location"])
    assert "Thank you for rating" in page.text and "★★★★☆" in page.text
    assert 'name="satisfaction"' not in page.text
    again = acme.post(f"/portal/work-orders/{done}/rating", data={"satisfaction": "1"})
    assert again.status_code == 422 and "already rated" in again.text
    open_wo = _wo_id(fleet, "pump-01", state="open")
    early = acme.post(f"/portal/work-orders/{open_wo}/rating", data={"satisfaction": "5"})
    assert early.status_code == 422 and "once the work is finished" in early.text


def test_the_portal_is_for_customers_only(fleet: Fleet, tokens: dict[str, str]) -> None:
    with DashboardClient(make_app(fleet), client=LOCAL) as local:
        # The local read-only viewer has no customer: sign in first.
        response = local.get("/portal", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/portal"
        local.post("/login", data={"token": fleet.desk_token, "next": "/"})
        staff = local.get("/portal")
        assert staff.status_code == 403 and "for customers" in staff.text
    with _signed_in(fleet, tokens["bolt"]) as bolt:
        page = bolt.get("/portal")
        assert "Line motor 3" in page.text and "Cooling pump" not in page.text
        with fleet.session_factory() as s:
            alert = s.scalars(select(Alert).where(Alert.asset_id == "pump-01")).first()
            assert alert is not None
        assert bolt.get(f"/alerts/{alert.id}").status_code == 404


def test_a_token_revoked_ends_the_customers_portal(fleet: Fleet, tokens: dict[str, str]) -> None:
    with _signed_in(fleet, tokens["acme"]) as client:
        assert client.get("/portal").status_code == 200
        with fleet.session_factory() as s:
            token_id = s.scalars(select(ApiToken.id).where(ApiToken.customer_id == "acme")).one()
            revoke_token(s, token_id, now=fleet.now)
            s.commit()
        gone = client.get("/portal", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")


def test_the_timeline_marks_the_steps_passed_and_the_current_one(fleet: Fleet) -> None:
    from cloud.dashboard._portal_views import work_order_progress
    from cloud.domain import transition

    with fleet.session_factory() as s:
        done = s.get(WorkOrder, _wo_id(fleet, "fan-02", state="done"))
        assert done is not None
        steps = work_order_progress(done).steps
        assert [(x.state, x.passed, x.current) for x in steps] == [
            ("open", True, False), ("assigned", True, False), ("in_progress", True, False),
            ("done", True, True), ("closed", False, False),
        ]
        assert steps[3].reached_at == done.done_at
        cancelled = transition(s, _wo_id(fleet, "pump-01", state="open"), "cancelled",
                               actor="desk", now=fleet.now)
        steps = work_order_progress(cancelled).steps
        assert [(x.state, x.current) for x in steps] == [("open", False), ("cancelled", True)]
        assert steps[-1].reached_at == fleet.now


def test_the_staff_asset_page_names_the_customer_and_its_tier(
    fleet: Fleet, tokens: dict[str, str]
) -> None:
    with DashboardClient(make_app(fleet), client=LOCAL) as local:
        page = local.get("/assets/pump-01")
        assert page.status_code == 200
        assert "ACME Steel · Shanghai works (Asia/Shanghai)" in page.text
        # The pump's own field says key; its customer is strategic, and that counts.
        assert "<dt>Customer tier</dt><dd>strategic</dd>" in page.text
