"""The lifecycle, dispatch and parts over the API; repeated filters; edits by state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ironwatch_app.demo_service import seed_service

from .conftest import Api

V1 = "/api/v1"
ALL_WEEK = {d: ["00:00", "24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def new_order(api: Api, asset_id: str = "fan-1", mode: str = "looseness") -> dict[str, Any]:
    return ok(  # type: ignore[no-any-return]
        api.request("service_desk", "POST", f"{V1}/work-orders",
                    json={"asset_id": asset_id, "failure_mode": mode, "priority": "P2"}),
        201,
    )


def move(api: Api, wo_id: int, body: dict[str, Any]) -> Any:
    return api.request("service_desk", "POST", f"{V1}/work-orders/{wo_id}/transitions", json=body)


def stock_up(api: Api) -> None:
    for wh, region in (("wh-a", "north"), ("wh-b", "south")):
        ok(api.request("admin", "POST", f"{V1}/warehouses",
                       json={"id": wh, "name": wh, "region": region}), 201)
    for part, name in (("BOLT-M16-SET", "Hold-down bolts M16"), ("SHIM-SET-A", "Shim set A")):
        ok(api.request("admin", "POST", f"{V1}/parts", json={"id": part, "name": name}), 201)
    ok(api.request("service_desk", "PUT", f"{V1}/warehouses/wh-a/stock/BOLT-M16-SET",
                   json={"on_hand": 3, "reorder_level": 3}))
    ok(api.request("service_desk", "PUT", f"{V1}/warehouses/wh-b/stock/SHIM-SET-A",
                   json={"on_hand": 1}))


def test_invalid_transition_is_409_with_the_allowed_states(api: Api) -> None:
    wo = new_order(api)
    assert wo["next_states"] == ["accepted", "assigned", "cancelled", "in_progress"]
    response = move(api, wo["id"], {"to_state": "closed"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "invalid_transition"
    assert error["details"]["allowed"] == ["accepted", "assigned", "cancelled", "in_progress"]
    assert "allowed: accepted, assigned, cancelled, in_progress" in error["message"]


def test_dispatch_parts_outcome_confirmation_over_the_api(api: Api) -> None:
    stock_up(api)
    skilled = ok(api.request("service_desk", "POST", f"{V1}/technicians", json={
        "name": "Ana", "failure_modes": ["looseness"], "asset_kinds": ["fan"],
        "region": "north", "calendar": {"weekly": ALL_WEEK, "days_off": ["2026-12-24"]},
    }), 201)
    ok(api.request("service_desk", "POST", f"{V1}/technicians", json={
        "name": "Ben", "failure_modes": ["imbalance"], "region": "north",
    }), 201)
    wo = new_order(api)
    url = f"{V1}/work-orders/{wo['id']}"
    parts = ok(api.request("engineer", "GET", f"{url}/parts"))
    assert {(p["part_id"], p["state"], p["available"]) for p in parts} == {
        ("BOLT-M16-SET", "not_reserved", 3), ("SHIM-SET-A", "not_reserved", 1)
    }
    ranked = ok(api.request("service_desk", "GET", f"{url}/suggested-technicians"))
    assert [r["technician"]["name"] for r in ranked] == ["Ana", "Ben"]
    assert ranked[0]["skill_match"] is True and "skilled in looseness" in ranked[0]["reasons"]
    api.clock[0] += timedelta(minutes=30)
    assigned = ok(api.request("service_desk", "POST", f"{url}/assign",
                              json={"technician_id": skilled["id"]}))
    assert (assigned["state"], assigned["technician_id"], assigned["assignee"]) == (
        "assigned", skilled["id"], "Ana"
    )
    assert assigned["sla_response"] == "met"
    parts = ok(api.request("engineer", "GET", f"{url}/parts"))
    assert {(p["part_id"], p["state"], p["warehouse_id"]) for p in parts} == {
        ("BOLT-M16-SET", "reserved", "wh-a"), ("SHIM-SET-A", "reserved", "wh-b")
    }
    listed = ok(api.request("engineer", "GET", f"{V1}/technicians?region=north&region=south"))
    assert {t["name"]: t["open_work_orders"] for t in listed["items"]} == {"Ana": 1, "Ben": 0}
    ok(move(api, wo["id"], {"to_state": "in_progress"}))
    api.clock[0] += timedelta(hours=2)
    done = ok(api.request("service_desk", "POST", f"{url}/complete", json={
        "cause_found": "two loose hold-down bolts", "action_taken": "replaced and torqued",
        "parts_used": [{"part_id": "BOLT-M16-SET", "quantity": 1}],
        "downtime_h": 1.5, "first_time_fix": True,
    }))
    assert (done["state"], done["cause_found"], done["downtime_h"], done["first_time_fix"]) == (
        "done", "two loose hold-down bolts", 1.5, True
    )
    assert done["parts_used"] == {"BOLT-M16-SET": 1}
    bolts = ok(api.request("engineer", "GET", f"{V1}/parts/BOLT-M16-SET/stock"))
    assert [(s["warehouse_id"], s["on_hand"], s["reserved"], s["low"]) for s in bolts] == [
        ("wh-a", 2, 0, True)
    ]
    shims = ok(api.request("engineer", "GET", f"{V1}/parts/SHIM-SET-A"))
    assert (shims["on_hand"], shims["reserved"]) == (1, 0)  # unused: given back
    notices = ok(api.request("engineer", "GET", f"{V1}/stock-notices?active=true"))
    assert [(n["part_id"], n["on_hand"], n["reorder_level"]) for n in notices["items"]] == [
        ("BOLT-M16-SET", 2, 3)
    ]
    bad = api.request("service_desk", "POST", f"{url}/rating", json={"satisfaction": 6})
    assert bad.status_code == 422
    rated = ok(api.request("service_desk", "POST", f"{url}/rating",
                           json={"satisfaction": 5, "feedback": "on time"}))
    assert (rated["satisfaction"], rated["feedback"]) == (5, "on time")
    visit = "2026-03-16T08:00:00Z"
    followed = ok(move(api, wo["id"], {"to_state": "follow_up", "follow_up_at": visit,
                                       "note": "re-check after a week of running"}))
    assert (followed["state"], followed["follow_up_at"]) == ("follow_up", visit)
    ok(move(api, wo["id"], {"to_state": "closed"}))
    history = ok(api.request("engineer", "GET", f"{url}/history"))
    assert [(h["kind"], h["to_state"]) for h in history] == [
        ("created", "open"), ("transition", "assigned"), ("transition", "in_progress"),
        ("transition", "done"), ("rated", None), ("transition", "follow_up"),
        ("transition", "closed"),
    ]
    assert {h["actor"] for h in history} == {"token:service_desk"}


def test_repeated_filters_mean_any_of(api: Api) -> None:
    first, second, third = (new_order(api, "fan-1", m) for m in ("looseness", "imbalance",
                                                                  "misalignment"))
    ok(move(api, second["id"], {"to_state": "assigned", "assignee": "ana"}))
    ok(move(api, third["id"], {"to_state": "cancelled"}))

    def ids(query: str) -> set[int]:
        page = ok(api.request("engineer", "GET", f"{V1}/work-orders?asset_id=fan-1&{query}"))
        return {w["id"] for w in page["items"]}

    assert ids("state=open&state=assigned") == {first["id"], second["id"]}
    assert ids("state=assigned") == {second["id"]}
    assert ids("active=true") == {first["id"], second["id"]}
    assert ids("active=false") == {third["id"]}
    kinds = ok(api.request("engineer", "GET", f"{V1}/assets?kind=pump&kind=fan"))
    assert {a["id"] for a in kinds["items"]} == {"pump-1", "fan-1"}
    alerts = ok(api.request("engineer", "GET", f"{V1}/alerts?state=resolved&state=open"))
    assert [a["asset_id"] for a in alerts["items"]] == ["pump-1"]
    assert ok(api.request("engineer", "GET", f"{V1}/alerts?active=false"))["total"] == 0
    assert ok(api.request("engineer", "GET", f"{V1}/alerts?active=true"))["total"] == 1
    twice = api.request("engineer", "GET", f"{V1}/work-orders?limit=5&limit=50")
    assert twice.status_code == 422
    assert twice.json()["error"]["details"]["repeated"] == ["limit"]


def test_patch_only_before_dispatch(api: Api) -> None:
    wo = new_order(api)
    url = f"{V1}/work-orders/{wo['id']}"
    ok(api.request("service_desk", "PATCH", url, json={"title": "Loose feet"}))
    ok(move(api, wo["id"], {"to_state": "accepted"}))
    ok(api.request("service_desk", "PATCH", url, json={"description": "bolts"}))
    ok(move(api, wo["id"], {"to_state": "assigned", "assignee": "ana"}))
    refused = api.request("service_desk", "PATCH", url, json={"title": "x"})
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["editable_states"] == ["open", "accepted"]


def test_the_demo_seeds_a_roster_and_stock_through_the_api(api: Api) -> None:
    def send(method: str, path: str, body: dict[str, Any]) -> Any:
        response = api.request("admin", method, f"{V1}{path}", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    counts = seed_service(send)
    roster = ok(api.request("engineer", "GET", f"{V1}/technicians"))["items"]
    assert len(roster) == counts["technicians"] >= 3
    assert {t["region"] for t in roster} == {"cn-east", "de-west"}
    warehouses = ok(api.request("engineer", "GET", f"{V1}/warehouses"))["items"]
    assert [w["id"] for w in warehouses] == ["wh-cologne", "wh-shanghai"]
    bearing = ok(api.request("engineer", "GET", f"{V1}/parts/BRG-6205-2RS"))
    assert (bearing["on_hand"], bearing["available"]) == (8, 8)
    # The seeded bearing job on pump-1 finds bearing technicians first and its parts.
    wo = ok(api.request("engineer", "GET", f"{V1}/work-orders?asset_id=pump-1"))["items"][0]
    url = f"{V1}/work-orders/{wo['id']}"
    ranked = ok(api.request("service_desk", "GET", f"{url}/suggested-technicians"))
    assert all(r["skill_match"] for r in ranked[:2])
    assert {r["technician"]["name"] for r in ranked[:2]} == {"Wei Zhang", "Jonas Weber"}
    ok(move(api, wo["id"], {"to_state": "accepted"}))
    parts = ok(api.request("engineer", "GET", f"{url}/parts"))
    assert {p["part_id"]: p["state"] for p in parts} == {
        "BRG-6205-2RS": "reserved", "GRS-LGMT2-400": "reserved", "SEAL-25-47-7": "reserved"
    }


def test_customer_filters_repeat_as_any_of(api: Api) -> None:
    for customer, tier in (("bolt", "standard"), ("cogs", "strategic")):
        ok(api.request("admin", "POST", f"{V1}/customers",
                       json={"id": customer, "name": customer, "tier": tier}), 201)
    both = ok(api.request("engineer", "GET", f"{V1}/customers?tier=key&tier=standard"))
    assert {c["id"] for c in both["items"]} == {"acme", "bolt"}  # acme: the fixture's
    one = ok(api.request("engineer", "GET", f"{V1}/customers?tier=strategic"))
    assert {c["id"] for c in one["items"]} == {"cogs"}


def test_roster_changes_reach_dispatch(api: Api) -> None:
    tech = ok(api.request("service_desk", "POST", f"{V1}/technicians", json={
        "name": "Ana", "failure_modes": ["looseness"], "region": "north",
    }), 201)
    url = f"{V1}/technicians/{tech['id']}"
    bad_zone = api.request("service_desk", "PATCH", url,
                           json={"calendar": {"timezone": "Mars/Olympus"}})
    assert bad_zone.status_code == 422
    bad_day = api.request("service_desk", "PATCH", url,
                          json={"calendar": {"days_off": ["2026-02-31"]}})
    assert bad_day.status_code == 422
    changed = ok(api.request("service_desk", "PATCH", url, json={
        "region": "south", "calendar": {"timezone": "Europe/Berlin",
                                        "weekly": {"sat": ["09:00", "13:00"]}},
    }))
    assert changed["region"] == "south"
    assert changed["calendar"]["weekly"] == {"sat": ["09:00", "13:00"]}
    wo = new_order(api)
    ok(api.request("service_desk", "POST", f"{V1}/work-orders/{wo['id']}/assign",
                   json={"technician_id": tech["id"]}))
    ok(api.request("service_desk", "PATCH", url, json={"active": False}))
    ranked = ok(api.request("service_desk", "GET",
                            f"{V1}/work-orders/{wo['id']}/suggested-technicians"))
    assert ranked == []  # inactive technicians are not suggested
    assert api.request("service_desk", "DELETE", url).status_code == 204
    after = ok(api.request("engineer", "GET", f"{V1}/work-orders/{wo['id']}"))
    assert (after["technician_id"], after["assignee"]) == (None, "Ana")
    assert api.request("engineer", "GET", url).status_code == 404
