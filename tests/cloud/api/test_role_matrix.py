"""Who may call what: every role against every endpoint, plus no token and a bad token."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api

ROLES = ("admin", "engineer", "service_desk", "gateway", "customer")
ALL = set(ROLES)
READERS = {"admin", "engineer", "service_desk"}
ENGINEERS = {"admin", "engineer"}
DESK = {"admin", "service_desk"}
ADMIN = {"admin"}
# Routes a customer token may use, for its own machines only (another's id is a 404).
CUSTOMER = {"customer"}

# (method, url, json body or None, roles allowed)
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/api/v1/assets", None, READERS | CUSTOMER),
    ("GET", "/api/v1/assets/pump-1", None, READERS | CUSTOMER),
    ("POST", "/api/v1/assets", {"id": "new-1", "gateway_id": "gw-1"}, ADMIN),
    ("PATCH", "/api/v1/assets/fan-1", {"location": "Hall B"}, ADMIN),
    ("POST", "/api/v1/assets/fan-1/running-hours", {"add_hours": 1}, ADMIN),
    ("GET", "/api/v1/assets/fan-1/maintenance-plans", None, READERS),
    ("POST", "/api/v1/assets/fan-1/maintenance-plans", {"interval_hours": 500}, DESK),
    ("GET", "/api/v1/assets/fan-1/running-hours/adjustments", None, READERS),
    ("GET", "/api/v1/maintenance-plans", None, READERS),
    ("POST", "/api/v1/maintenance-plans", {"asset_kind": "fan", "interval_days": 30}, DESK),
    ("GET", "/api/v1/maintenance-calendar", None, READERS),
    ("GET", "/api/v1/gateways", None, ENGINEERS),
    ("POST", "/api/v1/gateways", {"id": "gw-9"}, ADMIN),
    ("GET", "/api/v1/gateways/gw-1", None, ENGINEERS | {"gateway"}),
    ("GET", "/api/v1/gateways/gw-2", None, ENGINEERS),  # another gateway's registration
    ("GET", "/api/v1/gateways/gw-1/events", None, ENGINEERS),
    ("GET", "/api/v1/dead-letters", None, ENGINEERS),
    ("GET", "/api/v1/dead-letters?gateway_id=gw-1&reason=conflict", None, ENGINEERS),
    ("GET", "/api/v1/ingest/stats", None, ENGINEERS),
    ("PUT", "/api/v1/gateways/gw-1/status", {"state": "online", "seq": 5}, {"admin", "gateway"}),
    ("PUT", "/api/v1/gateways/gw-2/status", {"state": "online"}, ADMIN),
    ("GET", "/api/v1/alerts", None, READERS | CUSTOMER),
    ("GET", "/api/v1/alerts/1", None, READERS | CUSTOMER),
    ("GET", "/api/v1/alerts/1/events", None, READERS | CUSTOMER),
    ("POST", "/api/v1/alerts/1/acknowledge", None, ENGINEERS),
    ("POST", "/api/v1/alerts/1/resolve", {"note": "ok"}, ENGINEERS),
    ("POST", "/api/v1/alerts/1/verdict", {"verdict": "confirmed"}, ENGINEERS),
    ("POST", "/api/v1/alerts/1/comments", {"text": "checked on site"}, READERS),
    ("POST", "/api/v1/alerts/1/work-order", {"priority": "P2"}, DESK),
    ("GET", "/api/v1/verdicts", None, ENGINEERS),
    ("GET", "/api/v1/search?q=pump", None, READERS),
    ("GET", "/api/v1/export/alerts.csv?state=open&state=acknowledged", None, READERS),
    ("GET", "/api/v1/export/work-orders.csv", None, READERS),
    ("GET", "/api/v1/export/assets.csv", None, READERS),
    ("GET", "/api/v1/export/search.csv?q=pump", None, READERS),
    ("GET", "/api/v1/work-orders", None, READERS | CUSTOMER),
    ("GET", "/api/v1/work-orders/1", None, READERS | CUSTOMER),
    ("GET", "/api/v1/work-orders/1/history", None, READERS | CUSTOMER),
    ("POST", "/api/v1/fault-reports", {"asset_id": "fan-1", "description": "noise"},
     DESK | CUSTOMER),
    ("POST", "/api/v1/work-orders/1/rating", {"satisfaction": 4}, DESK | CUSTOMER),
    ("GET", "/api/v1/customers", None, READERS | CUSTOMER),
    ("GET", "/api/v1/customers/acme", None, READERS | CUSTOMER),
    ("POST", "/api/v1/customers", {"id": "c-9", "name": "C9"}, DESK),
    ("PATCH", "/api/v1/customers/acme", {"tier": "strategic"}, DESK),
    ("GET", "/api/v1/customers/acme/contacts", None, READERS | CUSTOMER),
    ("POST", "/api/v1/customers/acme/contacts", {"name": "A", "email": "a@acme.example"},
     DESK),
    ("GET", "/api/v1/sites", None, READERS | CUSTOMER),
    ("POST", "/api/v1/sites", {"id": "s-9", "customer_id": "acme", "name": "S9"}, DESK),
    ("POST", "/api/v1/work-orders", {"asset_id": "fan-1", "priority": "P2"}, DESK),
    ("PATCH", "/api/v1/work-orders/1", {"assignee": "ana"}, DESK),
    ("POST", "/api/v1/work-orders/1/transitions", {"to_state": "in_progress"}, DESK),
    ("GET", "/api/v1/escalations", None, DESK),
    ("POST", "/api/v1/work-orders/1/assign", {"technician_id": 1}, DESK),
    ("GET", "/api/v1/work-orders/1/suggested-technicians", None, DESK),
    ("GET", "/api/v1/work-orders/1/parts", None, READERS),
    ("POST", "/api/v1/work-orders/1/complete", {"cause_found": "c", "action_taken": "a",
                                                 "first_time_fix": True}, DESK),
    ("GET", "/api/v1/technicians", None, READERS),
    ("POST", "/api/v1/technicians", {"name": "Ana"}, DESK),
    ("GET", "/api/v1/parts", None, READERS),
    ("POST", "/api/v1/parts", {"id": "P-1", "name": "part"}, ADMIN),
    ("GET", "/api/v1/warehouses", None, READERS),
    ("POST", "/api/v1/warehouses", {"id": "wh-9"}, ADMIN),
    ("PUT", "/api/v1/warehouses/wh-9/stock/P-1", {"on_hand": 1}, DESK),
    ("GET", "/api/v1/stock-notices", None, READERS),
    ("GET", "/api/v1/kpis", None, READERS),
    ("GET", "/api/v1/kpis/series?bucket=week", None, READERS),
    ("GET", "/api/v1/cases", None, READERS),
    ("GET", "/api/v1/alerts/1/similar-cases", None, READERS),
    ("GET", "/api/v1/reports", None, READERS),
    ("GET", "/api/v1/webhooks/deliveries", None, DESK),
    ("GET", "/api/v1/webhooks/deliveries/1", None, DESK),
    ("GET", "/api/v1/webhook-subscriptions", None, DESK),
    ("GET", "/api/v1/webhook-subscriptions/1", None, DESK),
    (
        "POST",
        "/api/v1/webhook-subscriptions",
        {"name": "erp", "url": "https://erp.example/hooks", "events": ["work_order.*"]},
        ADMIN,
    ),
    ("PATCH", "/api/v1/webhook-subscriptions/1", {"active": False}, ADMIN),
    ("POST", "/api/v1/webhook-subscriptions/1/rotate-secret", None, ADMIN),
    ("DELETE", "/api/v1/webhook-subscriptions/1", None, ADMIN),
    ("GET", "/api/v1/notification-recipients", None, DESK),
    (
        "POST",
        "/api/v1/notification-recipients",
        {"role": "supervisor", "email": "sup@example.com"},
        ADMIN,
    ),
    ("GET", "/api/v1/notifications/emails", None, DESK),
    ("GET", "/api/v1/telemetry?asset_id=pump-1", None, ENGINEERS | CUSTOMER),
    ("GET", "/api/v1/telemetry/count?asset_id=pump-1", None, ENGINEERS | CUSTOMER),
    ("GET", "/api/v1/tokens", None, ADMIN),
    ("POST", "/api/v1/tokens", {"name": "x", "role": "engineer"}, ADMIN),
    ("DELETE", "/api/v1/tokens/1", None, ADMIN),
    ("DELETE", "/api/v1/assets/motor-2", None, ADMIN),
    ("DELETE", "/api/v1/gateways/gw-2", None, ADMIN),
]


def _id(endpoint: tuple[str, str, Any, set[str]]) -> str:
    return f"{endpoint[0]} {endpoint[1]}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_role_may_or_may_not(api: Api, endpoint: tuple[str, str, Any, set[str]], role: str) -> None:
    method, url, body, allowed = endpoint
    response = api.request(role, method, url, json=body)
    if role in allowed:
        # Allowed means "past auth": the telemetry store is absent here, hence 503.
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500 or url.startswith("/api/v1/telemetry"), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_no_token_is_401(api: Api, endpoint: tuple[str, str, Any, set[str]]) -> None:
    method, url, body, _ = endpoint
    response = api.request(None, method, url, json=body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("token", ["iw_not-a-real-token", "changeme", ""])
def test_bad_tokens_are_401(api: Api, token: str) -> None:
    response = api.client.get("/api/v1/assets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_health_needs_no_token(api: Api) -> None:
    response = api.client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "telemetry": "absent"}


def test_revoked_token_stops_working(api: Api) -> None:
    tokens = api.request("admin", "GET", "/api/v1/tokens").json()["items"]
    engineer = next(t for t in tokens if t["role"] == "engineer")
    assert api.request("engineer", "GET", "/api/v1/alerts").status_code == 200
    revoked = api.request("admin", "DELETE", f"/api/v1/tokens/{engineer['id']}")
    assert revoked.json()["revoked_at"] is not None
    assert api.request("engineer", "GET", "/api/v1/alerts").status_code == 401
