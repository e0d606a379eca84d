"""Maintenance plans over the API (CRUD, bad input), the calendar, running-hours history."""

from __future__ import annotations

from .conftest import Api

V1 = "/api/v1"


def test_plan_crud_and_calendar(api: Api) -> None:
    made = api.request("service_desk", "POST", f"{V1}/maintenance-plans", json={
        "asset_kind": "fan", "interval_hours": 500, "interval_days": 90, "priority": "P2",
        "tasks": ["Check belt tension"], "parts": ["V-belt SPA 1250"],
    })
    assert made.status_code == 201, made.text
    plan = made.json()
    assert (plan["asset_kind"], plan["asset_id"], plan["priority"]) == ("fan", None, "P2")
    assert plan["name"] == "Service every 500 h / 90 days"
    listed = api.request("engineer", "GET", f"{V1}/maintenance-plans?asset_kind=fan").json()
    assert [p["id"] for p in listed["items"]] == [plan["id"]]
    calendar = api.request("engineer", "GET", f"{V1}/maintenance-calendar").json()
    (fan,) = [i for i in calendar["items"] if i["plan_id"] == plan["id"]]
    assert fan["asset_id"] == "fan-1" and fan["due_hours"] == 500.0
    assert fan["due_at"] is not None and fan["expected_at"] == fan["due_at"]

    changed = api.request("service_desk", "PATCH", f"{V1}/maintenance-plans/{plan['id']}",
                          json={"interval_days": None, "active": False})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["interval_days"], changed.json()["active"]) == (None, False)
    # Dropping the last interval is refused with a clear message, not a 500.
    none_left = api.request("service_desk", "PATCH", f"{V1}/maintenance-plans/{plan['id']}",
                            json={"interval_hours": None})
    assert none_left.status_code == 422
    assert "interval" in none_left.json()["error"]["message"]
    gone = api.request("service_desk", "DELETE", f"{V1}/maintenance-plans/{plan['id']}")
    assert gone.status_code == 204
    assert api.request("engineer", "GET",
                       f"{V1}/maintenance-plans/{plan['id']}").status_code == 404


def test_bad_plans_are_refused(api: Api) -> None:
    for body in (
        {"asset_kind": "fan"},  # no interval
        {"asset_kind": "fan", "asset_id": "fan-1", "interval_hours": 10},  # both targets
        {"interval_hours": 10},  # no target
        {"asset_kind": "boat", "interval_hours": 10},
        {"asset_id": "fan-1", "interval_hours": -5},
        {"asset_id": "fan-1", "interval_days": 1, "priority": "P9"},
    ):
        response = api.request("service_desk", "POST", f"{V1}/maintenance-plans", json=body)
        assert response.status_code == 422, (body, response.text)
    missing = api.request("service_desk", "POST", f"{V1}/maintenance-plans",
                          json={"asset_id": "nope-1", "interval_hours": 10})
    assert missing.status_code == 404


def test_manual_hours_are_an_adjustment_in_history(api: Api) -> None:
    before = api.request("engineer", "GET", f"{V1}/assets/fan-1").json()
    assert before["running_hours_at"] is None and before["idle_velocity_mms"] is None
    added = api.request("admin", "POST", f"{V1}/assets/fan-1/running-hours",
                        json={"add_hours": 12.5, "note": "counter read on site"})
    assert added.status_code == 200
    assert added.json()["running_hours"] == before["running_hours"] + 12.5
    history = api.request("engineer", "GET",
                          f"{V1}/assets/fan-1/running-hours/adjustments").json()["items"]
    assert [(h["hours"], h["note"]) for h in history] == [(12.5, "counter read on site")]
    idle = api.request("admin", "PATCH", f"{V1}/assets/fan-1", json={"idle_velocity_mms": 0.8})
    assert idle.json()["idle_velocity_mms"] == 0.8
