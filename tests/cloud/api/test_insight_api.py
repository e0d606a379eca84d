"""The KPI series, the fault case library and the filed reports over the REST API."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from cloud.db.models import Asset, OperatingReport
from cloud.domain.cases import sync_cases
from cloud.domain.reports import Subject, file_report
from cloud.domain.workorders import transition

from .conftest import NOW, Api

V1 = "/api/v1"


def test_kpis_with_scope_and_series(api: Api) -> None:
    api.clock[0] = NOW + timedelta(days=3)
    with api.session_factory() as s:
        for asset in s.scalars(select(Asset)):
            asset.created_at = NOW - timedelta(days=60)  # registered before the period
        transition(s, 1, "in_progress", actor="d", now=NOW + timedelta(minutes=30))
        transition(s, 1, "done", actor="d", now=NOW + timedelta(hours=5))
        s.commit()
    body = api.request("engineer", "GET", f"{V1}/kpis").json()
    assert body["work_orders_opened"] == 1
    assert body["sla_by_priority"]["P1"]["response"] == {"met": 1, "judged": 1, "rate": 1.0}
    assert body["assets"] == 3 and body["availability"] == 1.0
    assert body["mean_lead_time_achieved_h"] == 5.0  # alert opened → work done
    fans = api.request("engineer", "GET", f"{V1}/kpis?asset_kind=fan").json()
    assert (fans["alerts_opened"], fans["assets"]) == (0, 1)
    series = api.request("engineer", "GET", f"{V1}/kpis/series?bucket=week").json()
    assert series["bucket"] == "week" and len(series["buckets"]) in (53, 54)
    assert sum(b["alerts_opened"] for b in series["buckets"]) == 1
    bad = api.request("engineer", "GET", f"{V1}/kpis/series?bucket=year")
    assert bad.status_code == 422
    too_long = api.request(
        "engineer", "GET", f"{V1}/kpis/series?bucket=week&start=2000-01-01T00:00:00Z"
    )
    assert too_long.status_code == 422 and "at most 160" in too_long.text


def test_cases_and_similar_cases(api: Api) -> None:
    with api.session_factory() as s:
        transition(s, 1, "in_progress", actor="d", now=NOW + timedelta(hours=1))
        transition(s, 1, "done", actor="d", now=NOW + timedelta(hours=5), note="cage cracked")
        transition(
            s, 1, "closed", actor="d", now=NOW + timedelta(hours=6),
            failure_confirmed_at=NOW + timedelta(hours=4),
        )  # fmt: skip
        sync_cases(s, now=NOW + timedelta(hours=7))
        s.commit()
    page = api.request("engineer", "GET", f"{V1}/cases?q=cage").json()
    assert page["total"] == 1
    case = page["items"][0]
    assert (case["asset_id"], case["failure_mode"], case["alert_id"]) == (
        "pump-1",
        "bearing_outer_race",
        1,
    )
    assert api.request("engineer", "GET", f"{V1}/cases/{case['id']}").json()["id"] == case["id"]
    assert api.request("engineer", "GET", f"{V1}/cases/999").status_code == 404
    # The case's own alert is not offered its own case.
    assert api.request("engineer", "GET", f"{V1}/alerts/1/similar-cases").json() == []
    assert api.request("engineer", "GET", f"{V1}/alerts/999/similar-cases").status_code == 404
    assert api.request("customer", "GET", f"{V1}/cases").status_code == 403


def test_filed_reports(api: Api) -> None:
    start = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with api.session_factory() as s:
        report = file_report(
            s, Subject("asset", "pump-1", "Pump 1"), start=start, end=start + timedelta(days=30),
            html="<!doctype html><p>report</p>", csv="\ufeffsection\r\n", locale="en", now=NOW,
        )  # fmt: skip
        again = file_report(
            s, Subject("asset", "pump-1", "Pump 1"), start=start, end=start + timedelta(days=30),
            html="other", csv="other", locale="en", now=NOW,
        )  # fmt: skip
        assert again.id == report.id and again.html.startswith("<!doctype")
        s.commit()
        assert s.query(OperatingReport).count() == 1
    listed = api.request("engineer", "GET", f"{V1}/reports?kind=asset").json()
    assert [r["subject_id"] for r in listed["items"]] == ["pump-1"]
    assert "html" not in listed["items"][0]
    csv_body = api.request("engineer", "GET", f"{V1}/reports/{report.id}/csv")
    assert csv_body.content.startswith(b"\xef\xbb\xbfsection")
    html = api.request("engineer", "GET", f"{V1}/reports/{report.id}/html")
    assert html.headers["content-type"].startswith("text/html") and b"report" in html.content
    assert api.request("engineer", "GET", f"{V1}/reports?kind=site").status_code == 422
