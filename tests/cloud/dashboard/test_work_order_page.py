"""The work-order page in-process: who may move a work order, the outcome form, follow-up."""

from __future__ import annotations

from sqlalchemy import select

from cloud.db.models import Part, StockLevel, Warehouse, WorkOrder

from .conftest import DashboardClient, Fleet, TestClient, make_app

REMOTE = ("10.1.2.3", 50000)


def signed_in(fleet: Fleet, token: str) -> DashboardClient:
    c = DashboardClient(make_app(fleet), client=REMOTE)
    r = c.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def order_id(fleet: Fleet, asset_id: str, state: str) -> int:
    with fleet.session_factory() as s:
        return s.scalars(
            select(WorkOrder.id).where(WorkOrder.asset_id == asset_id, WorkOrder.state == state)
        ).one()


def test_readers_see_the_page_but_only_the_desk_moves_it(
    fleet: Fleet, client: TestClient
) -> None:
    wo_id = order_id(fleet, "motor-03", "in_progress")
    page = client.get(f"/work-orders/{wo_id}")
    assert page.status_code == 200
    assert "Sign in with a service-desk token to move this work order." in page.text
    assert client.get("/work-orders/999999").status_code == 404
    engineer = signed_in(fleet, fleet.engineer_token)
    refused = engineer.post(f"/work-orders/{wo_id}/step", data={"to_state": "cancelled"},
                            follow_redirects=False)
    assert refused.status_code == 403
    with fleet.session_factory() as s:
        wo = s.get(WorkOrder, wo_id)
        assert wo is not None and wo.state == "in_progress"


def test_complete_with_the_outcome_form_then_follow_up(fleet: Fleet) -> None:
    with fleet.session_factory() as s:
        s.add_all([Warehouse(id="wh-1"), Part(id="CPL-INSERT-L100", name="Coupling insert"),
                   Part(id="SHIM-SET-A", name="Shim set")])
        s.flush()
        s.add(StockLevel(part_id="CPL-INSERT-L100", warehouse_id="wh-1", on_hand=2, reserved=0,
                         reorder_level=0))
        s.commit()
    desk = signed_in(fleet, fleet.desk_token)
    wo_id = order_id(fleet, "motor-03", "in_progress")
    page = desk.get(f"/work-orders/{wo_id}")
    assert 'name="used:CPL-INSERT-L100"' in page.text and "Complete with the outcome" in page.text
    missing = desk.post(f"/work-orders/{wo_id}/step", data={"to_state": "done"},
                        follow_redirects=False)
    assert missing.status_code == 422
    assert "Say what caused the fault and what was done." in missing.text
    done = desk.post(
        f"/work-orders/{wo_id}/step",
        data={"to_state": "done", "cause_found": "soft foot", "action_taken": "shimmed, aligned",
              "used:CPL-INSERT-L100": "1", "downtime_h": "2.5", "first_time_fix": "no"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/work-orders/{wo_id}"
    follow = desk.post(f"/work-orders/{wo_id}/step",
                       data={"to_state": "follow_up", "follow_up_on": "2030-01-15",
                             "note": "re-check alignment"}, follow_redirects=False)
    assert follow.status_code == 303
    wrong = desk.post(f"/work-orders/{wo_id}/step", data={"to_state": "accepted"},
                      follow_redirects=False)
    assert wrong.status_code == 409 and "allowed: closed, in_progress" in wrong.text
    with fleet.session_factory() as s:
        wo = s.get(WorkOrder, wo_id)
        assert wo is not None
        assert (wo.state, wo.cause_found, wo.downtime_h, wo.first_time_fix) == (
            "follow_up", "soft foot", 2.5, False
        )
        assert wo.follow_up_at is not None and wo.follow_up_at.date().isoformat() == "2030-01-15"
        level = s.get(StockLevel, ("CPL-INSERT-L100", "wh-1"))
        assert level is not None and level.on_hand == 1
    shown = desk.get(f"/work-orders/{wo_id}").text
    assert "soft foot" in shown and "re-check alignment" in shown


def test_an_accepted_order_stays_in_the_open_column(fleet: Fleet) -> None:
    desk = signed_in(fleet, fleet.desk_token)
    wo_id = order_id(fleet, "pump-01", "open")
    accepted = desk.post(f"/work-orders/{wo_id}/step", data={"to_state": "accepted"},
                         follow_redirects=False)
    assert accepted.status_code == 303
    board = desk.get("/work-orders").text
    open_column = board.split('id="col-open"')[1].split("</section>")[0]
    assert f'href="/work-orders/{wo_id}"' in open_column
    only_accepted = desk.get("/work-orders?state=accepted").text
    assert f'href="/work-orders/{wo_id}"' in only_accepted
    only_open = desk.get("/work-orders?state=open").text
    assert f'href="/work-orders/{wo_id}"' not in only_open
