"""Webhook subscriptions and e-mail recipients over the API: CRUD, secrets, bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cloud.db import WebhookDelivery
from cloud.domain import transition
from cloud.domain.errors import InvalidInputError
from cloud.domain.subscriptions import check_url

from .conftest import NOW, Api

URL = "/api/v1/webhook-subscriptions"
GOOD = {"name": "erp", "url": "https://erp.example/hooks", "events": ["work_order.*"]}


def test_crud_shows_the_secret_once_and_rotates_it(api: Api) -> None:
    created = api.request("admin", "POST", URL, json=GOOD)
    assert created.status_code == 201, created.text
    body = created.json()
    sub_id, secret = body["id"], body["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert (body["events"], body["active"], body["legacy"]) == (["work_order.*"], True, False)
    assert body["created_by"] == "bootstrap-admin"
    # Listed and read without the secret, also by the service desk.
    listed = api.request("service_desk", "GET", URL).json()
    assert [s["name"] for s in listed["items"]] == ["service desk", "erp"]
    one = api.request("service_desk", "GET", f"{URL}/{sub_id}").json()
    assert "secret" not in one and one["url"] == GOOD["url"]
    patched = api.request(
        "admin", "PATCH", f"{URL}/{sub_id}", json={"events": ["escalation.*"], "active": False}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["events"], patched.json()["active"]) == (["escalation.*"], False)
    api.clock[0] = NOW + timedelta(hours=1)
    rotated = api.request("admin", "POST", f"{URL}/{sub_id}/rotate-secret").json()
    assert rotated["secret"] != secret and rotated["secret"].startswith("whsec_")
    assert rotated["secret_rotated_at"] == "2026-03-02T09:00:00Z"
    deleted = api.request("admin", "DELETE", f"{URL}/{sub_id}")
    assert deleted.status_code == 200
    assert api.request("admin", "GET", f"{URL}/{sub_id}").status_code == 404


def test_deleting_a_subscription_cancels_its_pending_deliveries(api: Api) -> None:
    with api.session_factory() as session:
        transition(session, 1, "assigned", actor="d", now=NOW, assignee="ana")
        session.commit()
    pending = api.request("admin", "GET", "/api/v1/webhooks/deliveries?subscription_id=1")
    assert {d["state"] for d in pending.json()["items"]} == {"pending"}
    assert api.request("admin", "DELETE", f"{URL}/1").status_code == 200
    with api.session_factory() as session:
        states = session.scalars(select(WebhookDelivery.state)).all()
    assert states and set(states) == {"cancelled"}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"url": "ftp://erp.example/hooks"}, "http"),
        ({"url": "https://user:pw@erp.example/hooks"}, "credentials"),
        ({"url": "https://@erp.example/hooks"}, "credentials"),
        ({"url": "https:///hooks"}, "host"),
        ({"url": "http://erp.example:99999/"}, "URL"),
        ({"url": "http://[::1/"}, "URL"),
        ({"url": "https://erp.example/a b"}, "spaces"),
        ({"url": "x" * 2001}, "2000"),
        ({"events": []}, "events"),
        ({"events": ["work_order.deleted"]}, "no event type"),
        ({"events": ["Work Order"]}, "pattern"),
        ({"events": "work_order.*"}, "list"),
        ({"name": ""}, "name"),
        ({"active": "yes"}, "bool"),
        ({"secret": "mine"}, "secret"),
    ],
)
def test_bad_subscriptions_are_422(api: Api, change: dict[str, Any], says: str) -> None:
    response = api.request("admin", "POST", URL, json={**GOOD, **change})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert says.lower() in (error["message"] + str(error["details"])).lower()
    listed = api.request("admin", "GET", URL).json()
    assert listed["total"] == 1  # nothing was created


def test_bad_updates_are_422_and_unknown_ids_404(api: Api) -> None:
    assert api.request("admin", "PATCH", f"{URL}/1", json={"url": "gopher://x"}).status_code == 422
    assert api.request("admin", "PATCH", f"{URL}/1", json={"extra": 1}).status_code == 422
    assert api.request("admin", "PATCH", f"{URL}/99", json={"active": True}).status_code == 404
    assert api.request("admin", "GET", f"{URL}/0").status_code == 422
    assert api.request("admin", "POST", f"{URL}/99/rotate-secret").status_code == 404


def test_private_addresses_can_be_refused() -> None:
    assert check_url("http://127.0.0.1:8000/hooks") == "http://127.0.0.1:8000/hooks"
    for url in ("http://127.0.0.1/h", "http://10.1.2.3/h", "http://[::1]/h",
                "http://169.254.169.254/latest", "http://localhost/h"):
        with pytest.raises(InvalidInputError, match="non-public"):
            check_url(url, refuse_private=True)


def test_recipients_crud_and_bad_input(api: Api) -> None:
    rurl = "/api/v1/notification-recipients"
    made = api.request("admin", "POST", rurl, json={"role": "supervisor",
                                                    "email": "sup@plant.example", "name": "Sam"})
    assert made.status_code == 201, made.text
    again = api.request("admin", "POST", rurl, json={"role": "supervisor",
                                                     "email": "sup@plant.example"})
    assert again.status_code == 409
    for bad in ({"role": "supervisor", "email": "not-an-address"},
                {"role": "Super Visor", "email": "a@b.example"},
                {"role": "customer", "email": "a@b.example"},  # the customer's contacts
                {"role": "manager"}):
        assert api.request("admin", "POST", rurl, json=bad).status_code == 422
    listed = api.request("service_desk", "GET", rurl).json()
    assert [(r["role"], r["email"]) for r in listed["items"]] == [
        ("supervisor", "sup@plant.example")]
    rid = made.json()["id"]
    assert api.request("admin", "DELETE", f"{rurl}/{rid}").status_code == 200
    assert api.request("admin", "DELETE", f"{rurl}/{rid}").status_code == 404
    emails = api.request("service_desk", "GET", "/api/v1/notifications/emails?state=sent")
    assert emails.status_code == 200 and emails.json()["total"] == 0


def test_escalations_list_their_ladder_level(api: Api) -> None:
    from cloud.domain.escalation import check_escalations

    with api.session_factory() as session:  # the seeded P1 on a strategic asset: 1 h
        check_escalations(session, NOW + timedelta(minutes=50))
        session.commit()
    listed = api.request("service_desk", "GET", "/api/v1/escalations").json()
    assert [(e["kind"], e["level"]) for e in listed["items"]] == [("response", "warning")]
    history = api.request("service_desk", "GET", "/api/v1/work-orders/1/history").json()
    (warning,) = [h for h in history if h["kind"] == "escalation_warning"]
    assert warning["details"]["level"] == "warning"
    assert warning["details"]["notified_to"] == ["service_desk"]
