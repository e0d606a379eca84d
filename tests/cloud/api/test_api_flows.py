"""API behaviour: work-order and alert flows, the error model, paging, filters, telemetry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cloud.db import WebhookDelivery
from cloud.domain.alerts import upsert_alert
from cloud.domain.escalation import check_escalations
from cloud.domain.policy import EscalationLevel, ServiceLevelPolicy
from cloud.telemetry import FeatureFrame
from ironwatch.wire import FeatureRecord

from .conftest import NOW, Api, build

V1 = "/api/v1"


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]  # type: ignore[no-any-return]


def test_work_order_life_cycle_over_the_api(api: Api) -> None:
    created = api.request(
        "service_desk",
        "POST",
        f"{V1}/work-orders",
        json={"asset_id": "fan-1", "failure_mode": "looseness", "priority": "P1"},
    )
    assert created.status_code == 201, created.text
    wo = created.json()
    assert (wo["state"], wo["priority"], wo["source"], wo["failure_mode_code"]) == (
        "open",
        "P1",
        "manual",
        "STD",
    )
    assert wo["respond_by"] == "2026-03-02T12:00:00Z"  # P1, standard tier: 4 h
    url = f"{V1}/work-orders/{wo['id']}"
    for body in (
        {"to_state": "assigned", "assignee": "ana"},
        {"to_state": "in_progress"},
        {"to_state": "done", "note": "bolts torqued"},
        {"to_state": "closed"},
    ):
        api.clock[0] += timedelta(hours=1)
        moved = api.request("service_desk", "POST", f"{url}/transitions", json=body)
        assert moved.status_code == 200, moved.text
    assert moved.json()["state"] == "closed"
    history = api.request("engineer", "GET", f"{url}/history").json()
    assert [(h["from_state"], h["to_state"]) for h in history] == [
        (None, "open"),
        ("open", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "done"),
        ("done", "closed"),
    ]
    assert history[1]["actor"] == "token:service_desk"
    bad = api.request("service_desk", "POST", f"{url}/transitions", json={"to_state": "open"})
    assert bad.status_code == 409
    err = error_of(bad)
    assert err["code"] == "invalid_transition"
    assert err["details"] == {"from": "closed", "to": "open", "allowed": []}
    log = api.request("service_desk", "GET", f"{V1}/webhooks/deliveries?work_order_id={wo['id']}")
    assert log.json()["total"] == 5
    assert {d["state"] for d in log.json()["items"]} == {"pending"}


def test_duplicate_open_work_order_is_409(api: Api) -> None:
    body = {"asset_id": "pump-1", "failure_mode": "bearing_outer_race"}
    response = api.request("service_desk", "POST", f"{V1}/work-orders", json=body)
    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"


def test_false_alarm_verdict_cancels_the_work_order(api: Api) -> None:
    verdict = api.request(
        "engineer", "POST", f"{V1}/alerts/1/verdict", json={"verdict": "false_alarm", "note": "x"}
    )
    assert verdict.status_code == 201, verdict.text
    assert verdict.json()["verdict"] == "false_alarm"
    assert api.request("engineer", "GET", f"{V1}/alerts/1").json()["state"] == "resolved"
    assert api.request("engineer", "GET", f"{V1}/work-orders/1").json()["state"] == "cancelled"
    api.clock[0] = NOW + timedelta(hours=1)
    kpis = api.request("engineer", "GET", f"{V1}/kpis?start=2026-03-01T00:00:00Z").json()
    assert (kpis["false_alarms"], kpis["alerts_opened"]) == (1, 1)
    verdicts = api.request("engineer", "GET", f"{V1}/verdicts").json()
    assert verdicts["total"] == 1 and verdicts["items"][0]["model"] == "envelope"


def test_alert_acknowledge_and_resolve(api: Api) -> None:
    api.clock[0] = NOW + timedelta(minutes=30)
    ack = api.request("engineer", "POST", f"{V1}/alerts/1/acknowledge").json()
    assert (ack["state"], ack["acknowledged_by"]) == ("acknowledged", "token:engineer")
    assert ack["acknowledged_at"] == "2026-03-02T08:30:00Z"
    done = api.request("engineer", "POST", f"{V1}/alerts/1/resolve", json={"note": "replaced"})
    assert done.json()["resolution_note"] == "replaced"
    again = api.request("engineer", "POST", f"{V1}/alerts/1/resolve")
    assert again.status_code == 409
    kinds = [e["kind"] for e in api.request("engineer", "GET", f"{V1}/alerts/1/events").json()]
    assert kinds == ["opened", "acknowledged", "resolved"]


def test_an_open_ended_rul_is_shown_with_its_upper_bound_beyond_horizon(api: Api) -> None:
    bounded = api.request("engineer", "GET", f"{V1}/alerts/1").json()
    assert (bounded["rul_high_h"], bounded["rul_open_ended"]) == (600.0, False)
    with api.session_factory() as session:
        upsert_alert(
            session, asset_id="pump-1", failure_mode="bearing_outer_race", severity="alarm",
            score=6.5, evidence={}, model="envelope", model_version="2.0",
            rul_hours=(150.0, 300.0, None), now=NOW + timedelta(minutes=5),
        )
        session.commit()
    shown = api.request("engineer", "GET", f"{V1}/alerts/1").json()
    assert (shown["rul_low_h"], shown["rul_median_h"]) == (150.0, 300.0)
    assert shown["rul_high_h"] is None and shown["rul_open_ended"] is True


def test_paging_and_filters(api: Api) -> None:
    for i in range(7):
        response = api.request(
            "admin", "POST", f"{V1}/assets", json={"id": f"a-{i}", "gateway_id": "gw-2"}
        )
        assert response.status_code == 201
    page = api.request("engineer", "GET", f"{V1}/assets?gateway_id=gw-2&limit=3&offset=3").json()
    assert (page["total"], page["limit"], page["offset"]) == (8, 3, 3)
    assert [a["id"] for a in page["items"]] == ["a-3", "a-4", "a-5"]
    pumps = api.request("engineer", "GET", f"{V1}/assets?kind=pump").json()
    assert [a["id"] for a in pumps["items"]] == ["pump-1"]
    alarms = api.request("engineer", "GET", f"{V1}/alerts?severity=alarm&asset_id=pump-1").json()
    assert alarms["total"] == 1
    none = api.request("engineer", "GET", f"{V1}/alerts?opened_after=2026-03-03T00:00:00Z").json()
    assert none["total"] == 0
    p1 = api.request("service_desk", "GET", f"{V1}/work-orders?priority=P1&state=open").json()
    assert p1["total"] == 1
    api.clock[0] = NOW + timedelta(days=5)
    late = api.request("service_desk", "GET", f"{V1}/work-orders?overdue=true").json()
    assert late["total"] == 1


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "code"),
    [
        ("GET", f"{V1}/work-orders/999", None, 404, "not_found"),
        ("GET", f"{V1}/work-orders/0", None, 422, "validation_error"),
        ("GET", f"{V1}/work-orders/abc", None, 422, "validation_error"),
        ("GET", f"{V1}/assets?limit=0", None, 422, "validation_error"),
        ("GET", f"{V1}/alerts?opened_after=2026-03-03T00:00:00", None, 422, None),
        ("GET", f"{V1}/alerts?opened_after=1700000000", None, 422, None),
        ("GET", f"{V1}/alerts?sate=open", None, 422, None),
        ("POST", f"{V1}/work-orders", {"asset_id": "fan-1", "priority": "P9"}, 422, None),
        ("POST", f"{V1}/work-orders", {"asset_id": "fan-1", "surprise": 1}, 422, None),
        ("POST", f"{V1}/assets", {"id": "x", "gateway_id": "ghost"}, 404, "not_found"),
        ("POST", f"{V1}/assets", {"id": "pump-1", "gateway_id": "gw-1"}, 409, "conflict"),
        ("GET", f"{V1}/nowhere", None, 404, "not_found"),
        ("DELETE", f"{V1}/alerts", None, 405, "method_not_allowed"),
        ("GET", f"{V1}/kpis?start=2026-03-05T00:00:00Z&end=2026-03-01T00:00:00Z", None, 422, None),
    ],
)
def test_every_error_follows_the_error_model(
    api: Api, method: str, url: str, body: Any, status: int, code: str | None
) -> None:
    response = api.request("admin", method, url, json=body)
    assert response.status_code == status, response.text
    err = error_of(response)
    assert err["code"] == (code or "validation_error")
    assert err["message"]


def test_validation_errors_say_where(api: Api) -> None:
    response = api.request("admin", "POST", f"{V1}/work-orders", json={"priority": "P1"})
    details = error_of(response)["details"]["errors"]
    assert details[0]["loc"] == ["body", "asset_id"]


def test_escalations_over_the_api(api: Api) -> None:
    with api.session_factory() as session:
        # One level at the deadline; the whole ladder is tested in the domain tests.
        deadline_only = ServiceLevelPolicy(
            escalation_levels=(EscalationLevel(name="supervisor", at_fraction=1.0),)
        )
        raised = check_escalations(session, NOW + timedelta(hours=3), policy=deadline_only)
        session.commit()
    assert [e.kind for e in raised] == ["response"]  # strategic: respond within 1 h
    listed = api.request("service_desk", "GET", f"{V1}/escalations?acknowledged=false").json()
    assert listed["total"] == 1
    esc_id = listed["items"][0]["id"]
    ack = api.request("service_desk", "POST", f"{V1}/escalations/{esc_id}/acknowledge")
    assert ack.json()["acknowledged_by"] == "token:service_desk"
    assert (
        api.request("service_desk", "POST", f"{V1}/escalations/{esc_id}/acknowledge").status_code
        == 409
    )


def test_failed_delivery_can_be_retried(api: Api) -> None:
    with api.session_factory() as session:
        delivery = session.scalars(select(WebhookDelivery)).first()
        assert delivery is not None
        delivery.state = "failed"
        session.commit()
        delivery_id = delivery.id
    url = f"{V1}/webhooks/deliveries/{delivery_id}/retry"
    assert api.request("admin", "POST", url).json()["state"] == "pending"
    assert api.request("admin", "POST", url).status_code == 409


def test_gateway_reports_its_own_status(api: Api) -> None:
    body = {"state": "online", "seq": 17, "software_version": "1.2.0", "counters": {"sent": 9}}
    response = api.request("gateway", "PUT", f"{V1}/gateways/gw-1/status", json=body)
    assert response.status_code == 200, response.text
    gw = api.request("gateway", "GET", f"{V1}/gateways/gw-1").json()
    assert (gw["state"], gw["last_seq"], gw["software_version"]) == ("online", 17, "1.2.0")
    assert gw["asset_ids"] == ["fan-1", "pump-1"]
    assert gw["last_seen"] == "2026-03-02T08:00:00Z"


def test_gateway_created_with_credentials_shows_them_once(api: Api) -> None:
    created = api.request(
        "admin", "POST", f"{V1}/gateways", json={"id": "gw-9", "with_credentials": True}
    )
    assert created.status_code == 201
    assert len(created.json()["password"]) >= 24
    assert "password" not in api.request("admin", "GET", f"{V1}/gateways/gw-9").json()


def test_token_is_shown_once_and_works(api: Api) -> None:
    created = api.request(
        "admin", "POST", f"{V1}/tokens", json={"name": "desk-2", "role": "service_desk"}
    )
    token = created.json()["token"]
    listed = api.request("admin", "GET", f"{V1}/tokens").json()["items"]
    assert all("token" not in t for t in listed)
    response = api.client.get(f"{V1}/work-orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    bad = api.request("admin", "POST", f"{V1}/tokens", json={"name": "g", "role": "gateway"})
    assert bad.status_code == 422


class FakeStore:
    """A TelemetryStore stand-in answering from records in memory."""

    def __init__(self, records: list[FeatureRecord]) -> None:
        self.records = records
        self.calls: list[dict[str, Any]] = []

    def query(self, **kwargs: Any) -> FeatureFrame:
        self.calls.append(kwargs)
        rows = [("gw-1", r) for r in self.records if r.asset_id in kwargs["asset_ids"]]
        return FeatureFrame.from_records(rows[: kwargs["limit"]], kwargs["features"])


def test_telemetry_query_reads_the_store() -> None:
    t = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    records = [
        FeatureRecord(
            seq=i,
            asset_id="pump-1",
            point="de_radial",
            ts=t + timedelta(seconds=i),
            window_s=1.0,
            features={"velocity_rms_mms": 1.0 + i, "temperature_c": None},
        )
        for i in range(3)
    ]
    store = FakeStore(records)
    api = build(telemetry_store=store)
    response = api.request(
        "engineer",
        "GET",
        f"{V1}/telemetry?asset_id=pump-1&start=2026-03-02T00:00:00Z&limit=2"
        "&feature=velocity_rms_mms&feature=temperature_c",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 2
    assert body["feature_names"] == ["velocity_rms_mms", "temperature_c"]
    first = body["items"][0]
    assert first["ts"] == "2026-03-02T08:00:00Z"
    assert first["features"] == {"velocity_rms_mms": 1.0, "temperature_c": None}
    assert store.calls[0]["start"] == datetime(2026, 3, 2, tzinfo=UTC)
    bad = api.request("engineer", "GET", f"{V1}/telemetry?asset_id=pump-1&feature=Bad-Name")
    assert bad.status_code == 422
    assert api.request("engineer", "GET", f"{V1}/health").json()["telemetry"] == "attached"
    api.session_factory.kw["bind"].dispose()


def test_openapi_documents_every_route_and_the_error_model(api: Api) -> None:
    schema = api.client.get(f"{V1}/openapi.json", headers=api.as_("engineer")).json()
    assert "ErrorResponse" in schema["components"]["schemas"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    paths = schema["paths"]
    for path in (
        "/api/v1/work-orders/{work_order_id}/transitions",
        "/api/v1/kpis",
        "/api/v1/telemetry",
    ):
        assert path in paths
    assert "409" in paths["/api/v1/work-orders/{work_order_id}/transitions"]["post"]["responses"]


def test_telemetry_count_per_asset_and_fleet(tmp_path: Path) -> None:
    from cloud.telemetry import SqliteTelemetryStore

    t = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    store = SqliteTelemetryStore(tmp_path / "telemetry.db")
    records = [
        FeatureRecord(
            seq=i,
            asset_id="pump-1" if i < 3 else "fan-2",
            point="de",
            ts=t,
            window_s=1.0,
            features={"velocity_rms_mms": 1.0},
        )
        for i in range(5)
    ]
    assert store.write("gw-1", records) == 5
    assert store.write("gw-1", records[:2]) == 0  # a redelivery is not counted twice
    api = build(telemetry_store=store)
    one = api.request("engineer", "GET", f"{V1}/telemetry/count?asset_id=pump-1")
    assert one.status_code == 200, one.text
    assert one.json() == {"asset_id": "pump-1", "count": 3}
    assert api.request("engineer", "GET", f"{V1}/telemetry/count").json()["count"] == 5
    assert (
        api.request("engineer", "GET", f"{V1}/telemetry/count?asset_id=bad/id").status_code == 422
    )
    store.close()
    api.session_factory.kw["bind"].dispose()
