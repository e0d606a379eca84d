"""The engineer's workbench over the API: verdicts with corrections and their effects in the
history, comments, a work order opened by hand from an alert, CSV exports with repeated
filters, and search."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import select

from cloud.db.models import Alert, Asset, Customer, Site, WorkOrder
from cloud.domain import upsert_alert

from .conftest import NOW, Api


def _csv(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "no byte-order mark: Excel would misread UTF-8"
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_false_alarm_with_correction_cancels_and_says_so(api: Api) -> None:
    r = api.request(
        "engineer",
        "POST",
        "/api/v1/alerts/1/verdict",
        json={
            "verdict": "false_alarm",
            "note": "belt slap, not the bearing",
            "corrected_failure_mode": "belt_looseness",
        },
    )
    assert r.status_code == 201, r.text
    verdict = r.json()
    assert verdict["corrected_failure_mode"] == "belt_looseness"
    assert verdict["work_order_id"] == 1
    events = api.request("engineer", "GET", "/api/v1/alerts/1/events").json()
    entry = next(e for e in events if e["kind"] == "verdict")
    assert entry["actor"] == "token:engineer"
    assert entry["details"] == {
        "verdict_id": verdict["id"],
        "verdict": "false_alarm",
        "note": "belt slap, not the bearing",
        "corrected_failure_mode": "belt_looseness",
        "alert_resolved": True,
        "work_order_cancelled": 1,
        "model_feedback": True,
    }
    assert api.request("engineer", "GET", "/api/v1/work-orders/1").json()["state"] == "cancelled"
    # A second verdict on the now-closed alert is kept too and changes nothing else.
    again = api.request(
        "engineer", "POST", "/api/v1/alerts/1/verdict", json={"verdict": "inconclusive"}
    )
    assert again.status_code == 201
    events = api.request("engineer", "GET", "/api/v1/alerts/1/events").json()
    later = [e for e in events if e["kind"] == "verdict"][-1]["details"]
    assert later["alert_resolved"] is False and later["work_order_cancelled"] is None


def test_bad_correction_is_422(api: Api) -> None:
    r = api.request(
        "engineer",
        "POST",
        "/api/v1/alerts/1/verdict",
        json={"verdict": "confirmed", "corrected_failure_mode": "=cmd|' /C calc'!A0"},
    )
    assert r.status_code == 422
    assert api.request("engineer", "GET", "/api/v1/verdicts").json()["total"] == 0


def test_comments_go_into_the_history(api: Api) -> None:
    r = api.request(
        "service_desk", "POST", "/api/v1/alerts/1/comments", json={"text": "客户已通知"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "comment" and r.json()["details"] == {"text": "客户已通知"}
    events = api.request("engineer", "GET", "/api/v1/alerts/1/events").json()
    assert events[-1]["actor"] == "token:service_desk"
    for bad in ("", "   ", "x" * 2001):
        refused = api.request("engineer", "POST", "/api/v1/alerts/1/comments", json={"text": bad})
        assert refused.status_code == 422, bad
    missing = api.request("engineer", "POST", "/api/v1/alerts/99/comments", json={"text": "x"})
    assert missing.status_code == 404


def test_open_work_order_from_alert(api: Api) -> None:
    # The scorer's own work order is open: one job per (asset, failure mode).
    twin = api.request(
        "service_desk", "POST", "/api/v1/alerts/1/work-order", json={"priority": "P1"}
    )
    assert twin.status_code == 409
    assert twin.json()["error"]["details"]["work_order_id"] == 1
    api.request(
        "service_desk", "POST", "/api/v1/work-orders/1/transitions", json={"to_state": "cancelled"}
    )
    with api.session_factory() as s:
        s.get(Alert, 1).state = "open"  # type: ignore[union-attr]
        s.commit()
    r = api.request(
        "service_desk",
        "POST",
        "/api/v1/alerts/1/work-order",
        json={"priority": "P1", "note": "customer asked for a visit"},
    )
    assert r.status_code == 201, r.text
    wo = r.json()
    assert wo["alert_id"] == 1 and wo["priority"] == "P1" and wo["source"] == "manual"
    assert wo["created_by"] == "token:service_desk" and "customer asked" in wo["description"]


def _seed_for_export(api: Api) -> None:
    with api.session_factory() as s:
        asset = s.get(Asset, "fan-1")
        assert asset is not None
        asset.name = "排风机 2号"
        for i, mode in enumerate(("imbalance", "misalignment")):
            alert = upsert_alert(
                s,
                asset_id="fan-1",
                failure_mode=mode,
                severity="warning",
                score=1.5,
                evidence={},
                model="m",
                model_version="1",
                rul_hours=None,
                now=NOW + timedelta(hours=i + 1),
            )
            alert.resolution_note = '=HYPERLINK("http://evil.example","click")'
        # One acknowledged, one resolved: the export filters by two of the four states.
        s.scalars(
            select(Alert).where(Alert.failure_mode == "imbalance")
        ).one().state = "acknowledged"
        s.scalars(
            select(Alert).where(Alert.failure_mode == "misalignment")
        ).one().state = "resolved"
        s.commit()


def test_alert_export_repeated_filters_quoting_and_injection(api: Api) -> None:
    _seed_for_export(api)
    r = api.request(
        "engineer", "GET", "/api/v1/export/alerts.csv?state=open&state=acknowledged&sort=opened"
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["content-disposition"]
    rows = _csv(r.content)
    assert [(x["id"], x["state"]) for x in rows] == [("1", "open"), ("2", "acknowledged")]
    fan = rows[1]
    assert fan["asset_name"] == "排风机 2号"
    assert fan["resolution_note"] == '\'=HYPERLINK("http://evil.example","click")'
    assert fan["opened_at"] == (NOW + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    # Every state given once: all three; by severity and asset too.
    every = api.request("engineer", "GET", "/api/v1/export/alerts.csv?asset=fan-1").content
    assert len(_csv(every)) == 2
    critical = api.request("engineer", "GET", "/api/v1/export/alerts.csv?severity=critical")
    assert _csv(critical.content) == []


def test_export_refuses_bad_filters(api: Api) -> None:
    bad = ("state=opn", "sate=open", "sort=-nonsense", "from=yesterday", "to=0", "priority=P9")
    for query in bad:
        r = api.request("engineer", "GET", f"/api/v1/export/alerts.csv?{query}")
        assert r.status_code == 422, query
        assert r.json()["error"]["code"] in ("validation_error", "invalid_input")


def test_work_order_and_asset_exports(api: Api) -> None:
    orders = _csv(
        api.request("service_desk", "GET", "/api/v1/export/work-orders.csv?state=open").content
    )
    assert [(o["id"], o["asset_id"], o["priority"]) for o in orders] == [("1", "pump-1", "P1")]
    tiers = _csv(
        api.request(
            "service_desk", "GET", "/api/v1/export/assets.csv?tier=key&tier=strategic&sort=-id"
        ).content
    )
    assert [a["id"] for a in tiers] == ["pump-1", "motor-2"]
    with api.session_factory() as s:
        assert s.scalar(select(WorkOrder).where(WorkOrder.state == "open")) is not None


def test_search_finds_assets_alerts_and_work_orders(api: Api) -> None:
    _seed_for_export(api)
    found = api.request("engineer", "GET", "/api/v1/search?q=排风机").json()
    assert [h["id"] for h in found["assets"]] == ["fan-1"]
    assert {h["id"] for h in found["alerts"]} == {"2", "3"}
    outer = api.request("engineer", "GET", "/api/v1/search?q=outer race").json()
    assert [h["id"] for h in outer["alerts"]] == ["1"]
    assert [h["id"] for h in outer["work_orders"]] == ["1"]
    assert outer["totals"] == {"assets": 0, "alerts": 1, "work_orders": 1, "cases": 0}
    # LIKE wildcards are literal text, not patterns.
    assert api.request("engineer", "GET", "/api/v1/search?q=%25").json()["totals"]["alerts"] == 0
    csv_rows = _csv(api.request("engineer", "GET", "/api/v1/export/search.csv?q=pump").content)
    assert {(r["kind"], r["id"]) for r in csv_rows} >= {("asset", "pump-1"), ("alert", "1")}
    assert api.request("engineer", "GET", "/api/v1/search?q=").status_code == 422


def test_exports_filter_by_customer_and_the_tier_that_counts(api: Api) -> None:
    with api.session_factory() as s:
        s.add(Customer(id="dongfang", name="东方电机", tier="key"))
        s.add(Site(id="df-sh", customer_id="dongfang", name="Shanghai", timezone="Asia/Shanghai"))
        s.flush()
        # fan-1's own tier is "standard": its customer's "key" is the one that counts.
        s.get(Asset, "fan-1").site_id = "df-sh"  # type: ignore[union-attr]
        s.commit()
    by_customer = api.request("engineer", "GET", "/api/v1/export/assets.csv?customer=dongfang")
    assert [(a["id"], a["customer_id"], a["customer_tier"]) for a in _csv(by_customer.content)] == [
        ("fan-1", "dongfang", "key")
    ]
    key = _csv(api.request("engineer", "GET", "/api/v1/export/assets.csv?tier=key").content)
    assert [a["id"] for a in key] == ["fan-1", "motor-2"]
    standard = api.request("engineer", "GET", "/api/v1/export/assets.csv?tier=standard").content
    assert _csv(standard) == []
    orders = api.request("engineer", "GET", "/api/v1/export/work-orders.csv?customer=dongfang")
    assert _csv(orders.content) == []  # the open work order is pump-1's
