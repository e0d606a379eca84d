"""The engineer's workbench over TestClient: actions on the alert page by role, their
history and messages, refusals shown as pages, list filters in the URL, CSV and search."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import select

from cloud.db.models import Alert, AlertEvent, Verdict, WorkOrder

from .conftest import ADMIN_TOKEN, DashboardClient, Fleet, TestClient, make_app

REMOTE = ("10.1.2.3", 50000)


def signed_in(fleet: Fleet, token: str) -> DashboardClient:
    c = DashboardClient(make_app(fleet), client=REMOTE)
    r = c.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def _csv(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_engineer_acknowledges_then_judges_twice(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.engineer_token)
    page = f"/alerts/{fleet.alert_id}"
    html = c.get(page).text
    assert 'action="/alerts/1/acknowledge"' in html and "Record verdict" in html
    r = c.post(f"{page}/acknowledge", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{page}?done=acknowledged"
    text = _text(c.get(r.headers["location"]).text)
    assert "Alert acknowledged." in text and "by token:eng-1" in text
    assert 'action="/alerts/1/acknowledge"' not in c.get(page).text  # done: not offered again

    r = c.post(
        f"{page}/verdict",
        data={"verdict": "confirmed", "reason": "BPFO peaks on the envelope"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = c.post(
        f"{page}/verdict",
        data={
            "verdict": "false_alarm",
            "reason": "sensor cable loose, not the bearing",
            "corrected_failure_mode": "looseness",
        },
    )
    assert r.status_code == 200
    text = _text(r.text)
    assert "Verdict recorded." in text
    # Both verdicts, the earlier one still there, in words, with what each changed.
    verdicts = text[text.index("Verdicts") : text.index("Why the model fired")]
    assert verdicts.index("Confirmed fault") < verdicts.index("False alarm")
    assert "BPFO peaks on the envelope" in verdicts
    assert "sensor cable loose, not the bearing" in verdicts
    assert "Failure mode found: looseness" in verdicts
    assert "alert resolved; work order WO-1 cancelled" in verdicts
    assert verdicts.count("feedback recorded for the models") == 2
    with fleet.session_factory() as s:
        rows = s.scalars(select(Verdict).order_by(Verdict.id)).all()
        assert [(v.verdict, v.actor) for v in rows] == [
            ("confirmed", "token:eng-1"),
            ("false_alarm", "token:eng-1"),
        ]
        assert rows[1].corrected_failure_mode == "looseness"
        assert s.get(WorkOrder, 1).state == "cancelled"  # type: ignore[union-attr]
        kinds = [e.kind for e in s.scalars(select(AlertEvent).order_by(AlertEvent.id))]
        assert kinds[-4:] == ["acknowledged", "verdict", "resolved", "verdict"]


def test_refusals_are_pages_not_json(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.engineer_token)
    page = f"/alerts/{fleet.alert_id}"
    r = c.post(f"{page}/verdict", data={"verdict": "false_alarm", "reason": "  "})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "Give a reason for the verdict." in r.text
    r = c.post(f"{page}/verdict", data={"verdict": "maybe", "reason": "x"})
    assert r.status_code == 422 and "unknown verdict" in r.text
    with fleet.session_factory() as s:
        assert s.scalars(select(Verdict)).all() == []
        s.get(Alert, fleet.alert_id).state = "resolved"  # type: ignore[union-attr]
        s.commit()
    r = c.post(f"{page}/acknowledge")
    assert r.status_code == 409 and "only open alerts can be acknowledged" in r.text
    assert "<h1>Alert #1" in r.text  # the alert page itself, with the message
    assert c.post("/alerts/999/comment", data={"text": "x"}).status_code == 404


def test_service_desk_comments_opens_and_assigns(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.desk_token)
    page = f"/alerts/{fleet.alert_id}"
    html = c.get(page).text
    # The desk's actions are the API's: no acknowledging or judging.
    assert "/acknowledge" not in html and "Record verdict" not in html
    assert 'action="/alerts/1/comment"' in html and 'action="/alerts/1/assign"' in html
    # WO-1 is open for this failure mode: no second one is offered ...
    assert 'action="/alerts/1/work-order"' not in html
    # ... and one forced anyway is a conflict shown on the page.
    r = c.post(f"{page}/work-order", data={"priority": "P1"})
    assert r.status_code == 409 and "work order 1 is already open" in r.text
    r = c.post(f"{page}/comment", data={"text": "客户已通知, visit booked"})
    assert "Comment added." in r.text and "客户已通知, visit booked" in r.text
    r = c.post(f"{page}/assign", data={"work_order_id": "1", "assignee": "li.wei"})
    assert "Work order assigned." in r.text
    with fleet.session_factory() as s:
        wo = s.get(WorkOrder, 1)
        assert wo is not None and (wo.state, wo.assignee) == ("assigned", "li.wei")
        # Not another asset's work order through this alert's form.
        other = s.scalars(select(WorkOrder).where(WorkOrder.asset_id == "fan-02")).first()
        assert other is not None
        other_id = other.id
    r = c.post(f"{page}/assign", data={"work_order_id": str(other_id), "assignee": "x"})
    assert r.status_code == 404
    refused = c.post(f"{page}/acknowledge")
    assert refused.status_code == 403 and "may not do this" in refused.text


def test_desk_opens_a_work_order_once_the_old_one_is_gone(fleet: Fleet) -> None:
    with fleet.session_factory() as s:
        s.get(WorkOrder, 1).state = "cancelled"  # type: ignore[union-attr]
        s.commit()
    c = signed_in(fleet, fleet.desk_token)
    page = f"/alerts/{fleet.alert_id}"
    assert 'action="/alerts/1/work-order"' in c.get(page).text
    r = c.post(f"{page}/work-order", data={"priority": "P0", "note": "customer called"})
    assert "Work order opened." in r.text
    with fleet.session_factory() as s:
        wo = s.scalars(select(WorkOrder).order_by(WorkOrder.id.desc())).first()
        assert wo is not None
        assert (wo.alert_id, wo.priority, wo.source, wo.created_by) == (
            fleet.alert_id,
            "P0",
            "manual",
            "token:desk-1",
        )


def test_read_only_viewer_sees_no_actions_and_a_forged_post_is_refused(
    client: TestClient, fleet: Fleet
) -> None:
    html = client.get(f"/alerts/{fleet.alert_id}").text
    # No action form (the header's language switch is the only form a read-only viewer gets).
    assert "actions-panel" not in html
    assert re.findall(r"<form[^>]*action=\"([^\"]*)\"", html) == ["/preferences"]
    for action in ("acknowledge", "verdict", "comment", "work-order", "assign", "snapshot"):
        # A well-formed post with the browser's own CSRF token: refused for the role.
        r = client.post(
            f"/alerts/{fleet.alert_id}/{action}",
            data={"verdict": "false_alarm", "reason": "x", "text": "x", "priority": "P1"},
        )
        assert r.status_code == 403, action
    with fleet.session_factory() as s:
        alert = s.get(Alert, fleet.alert_id)
        assert alert is not None and alert.state == "open" and len(alert.events) == 2
        assert s.scalars(select(Verdict)).all() == []


def test_actions_need_the_csrf_token(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.engineer_token)
    plain = TestClient(c.app, client=REMOTE, cookies=dict(c.cookies))
    for data in ({}, {"csrf_token": "guessed"}):
        r = plain.post(f"/alerts/{fleet.alert_id}/acknowledge", data=data)
        assert r.status_code == 403 and "CSRF" in r.text
    with fleet.session_factory() as s:
        assert s.get(Alert, fleet.alert_id).state == "open"  # type: ignore[union-attr]


def test_alerts_list_filters_in_the_url(client: TestClient) -> None:
    both = client.get("/alerts?state=open&state=resolved").text
    assert 'href="/alerts/1"' in both and 'href="/alerts/2"' in both
    assert "2 found" in both
    # The filters are kept in the form: both boxes ticked.
    assert len(re.findall(r'name="state" value="(open|resolved)" checked', both)) == 2
    only = client.get("/alerts?state=resolved").text
    assert 'href="/alerts/1"' not in only and 'href="/alerts/2"' in only
    assert 'href="/alerts/1"' in client.get("/alerts?failure_mode=bearing_outer_race").text
    assert "1 found" in client.get("/alerts?tier=key&severity=alarm").text
    assert "0 found" in client.get("/alerts?tier=standard").text
    page2 = client.get("/alerts?per_page=1&page=2&sort=opened").text
    assert 'href="/alerts/1"' in page2 and "page 2 of 2" in page2 and 'rel="prev"' in page2
    bad = client.get("/alerts?state=nope")
    assert bad.status_code == 400 and "text/html" in bad.headers["content-type"]
    assert client.get("/alerts?colour=red").status_code == 400


def test_alerts_and_board_export_csv(client: TestClient) -> None:
    r = client.get("/alerts?state=open&format=csv")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = _csv(r.content)
    assert [(x["id"], x["asset_name"], x["state"]) for x in rows] == [
        ("1", "Cooling pump 1", "open")
    ]
    orders = _csv(client.get("/work-orders?state=open&state=assigned&format=csv").content)
    assert sorted((o["state"], o["asset_id"]) for o in orders) == [
        ("assigned", "fan-02"),
        ("open", "pump-01"),
    ]
    assets = _csv(client.get("/assets?kind=fan&kind=motor&format=csv").content)
    assert [a["id"] for a in assets] == ["fan-02", "motor-03"]


def test_board_filtered_by_two_states_and_list_view(client: TestClient) -> None:
    html = client.get("/work-orders?state=open&state=in_progress").text
    columns = re.split(r'<section class="column"', html)[1:]
    assert len(columns) == 2
    assert "Cooling pump 1" in columns[0] and "a.lee" in columns[1]
    assert "j.doe" not in html.split("<main")[1].split("</form>")[1]
    listed = client.get("/work-orders?view=list&state=done&state=assigned&sort=-priority").text
    rows = re.findall(r"<td>WO-(\d+) ", listed)
    assert len(rows) == 2 and "2 found" in listed
    # Closed or cancelled only: there is no column for them, so the list is shown.
    assert "No work order matches" in client.get("/work-orders?state=cancelled").text


def test_search_page(client: TestClient) -> None:
    html = client.get("/search?q=cooling").text
    assert 'href="/assets/pump-01"' in html
    outer = client.get("/search?q=outer race").text
    assert 'href="/alerts/1"' in outer and "#1 bearing outer race" in outer
    assert "Nothing found." in client.get("/search?q=zzz-nothing").text
    rows = _csv(client.get("/search?q=pump&format=csv").content)
    assert ("asset", "pump-01") in {(r["kind"], r["id"]) for r in rows}
    too_long = client.get("/search?q=" + "x" * 300)
    assert too_long.status_code == 400 and "longer than 200" in too_long.text


def test_admin_has_every_action(fleet: Fleet) -> None:
    c = signed_in(fleet, ADMIN_TOKEN)
    html = c.get(f"/alerts/{fleet.alert_id}").text
    for action in ("acknowledge", "verdict", "comment", "assign", "snapshot"):
        assert f'action="/alerts/1/{action}"' in html, action
    r = c.post(f"/alerts/{fleet.alert_id}/snapshot")
    assert "Snapshot requested." in r.text
    assert fleet.requested == [("pump-01", "de_radial", "bootstrap-admin")]


def test_a_customer_gets_no_list_search_export_or_action(fleet: Fleet) -> None:
    from .test_portal import add_customers

    token = add_customers(fleet)["acme"]
    c = DashboardClient(make_app(fleet), client=REMOTE)
    c.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    for path in (
        "/alerts",
        "/alerts?format=csv",
        "/work-orders?format=csv",
        "/assets?format=csv",
        "/search?q=pump",
        "/search?q=pump&format=csv",
    ):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 404, path
        assert "Cooling pump" not in r.text and "pump-01" not in r.text, path
    r = c.post(f"/alerts/{fleet.alert_id}/comment", data={"text": "hello"})
    assert r.status_code == 404
    with fleet.session_factory() as s:
        assert [e.kind for e in s.get(Alert, fleet.alert_id).events] == [  # type: ignore[union-attr]
            "opened",
            "escalated",
        ]
