"""The KPI page, operating reports and the fault case library over TestClient, on the
seeded dashboard fleet (real SQLite database and embedded telemetry store)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from sqlalchemy import select

from cloud.dashboard import file_reports
from cloud.db.models import Alert, Asset, Customer, FaultCase, OperatingReport, Site, WorkOrder
from cloud.domain.cases import sync_cases

from .conftest import LOCAL, DashboardClient, Fleet, make_app


def _csv(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def add_closed_case(fleet: Fleet) -> int:
    """A past outer-race alert on pump-01 whose work order was closed with the failure
    confirmed and rated 4 by the customer; returns the work order id."""
    now = fleet.now
    with fleet.session_factory() as s:
        for asset in s.scalars(select(Asset)):
            asset.created_at = now - timedelta(days=60)  # in service before the history
        opened = s.get(Alert, fleet.alert_id)
        assert opened is not None
        past = Alert(
            asset_id="pump-01",
            failure_mode="bearing_outer_race",
            severity="alarm",
            state="resolved",
            score=2.2,
            evidence=dict(opened.evidence),
            model="m",
            model_version="1",
            opened_at=now - timedelta(days=20),
            last_seen_at=now - timedelta(days=19),
            acknowledged_at=now - timedelta(days=20) + timedelta(hours=2),
            resolved_at=now - timedelta(days=18),
        )
        s.add(past)
        s.flush()
        wo = WorkOrder(
            asset_id="pump-01",
            alert_id=past.id,
            failure_mode="bearing_outer_race",
            title="Replace DE bearing",
            priority="P1",
            state="closed",
            created_at=past.opened_at,
            updated_at=now - timedelta(days=18),
            respond_by=past.opened_at + timedelta(hours=4),
            resolve_by=past.opened_at + timedelta(hours=48),
            responded_at=past.opened_at + timedelta(hours=1),
            done_at=past.opened_at + timedelta(hours=30),
            closed_at=past.opened_at + timedelta(hours=31),
            failure_confirmed_at=past.opened_at + timedelta(hours=20),
            resolution_note="Outer race spalled; bearing 6205 replaced",
            cause_found="Outer race spalled",
            action_taken="Bearing 6205 replaced",
            downtime_h=6.0,
            first_time_fix=True,
            satisfaction=4,
        )
        s.add(wo)
        s.flush()
        sync_cases(s, now=now)
        s.commit()
        return wo.id


def test_kpi_page_shows_the_period_and_exports_the_table(fleet: Fleet) -> None:
    add_closed_case(fleet)
    c = DashboardClient(make_app(fleet), client=LOCAL)
    html = c.get("/kpis").text
    assert 'data-kpi="satisfaction">4 / 5' in html
    # The closed job answered in 1 h of 4 and finished in 30 h of 48; the open P1 of the
    # fleet is still inside its response deadline, so only one response is judged.
    assert 'data-kpi="sla_resolution">100 %' in html
    assert 'data-kpi="first_time_fix">100 %' in html
    availability = re.search(r'data-kpi="availability">([0-9.]+) %', html)
    assert availability is not None and 99.0 < float(availability.group(1)) < 100.0
    assert re.search(r'class="bar s1" data-series="resolve alert" data-period="\d{4}-\d{2}"', html)
    assert "How these are computed" in html and "Lead time achieved" in html
    weekly = c.get("/kpis?bucket=week&format=csv")
    rows = _csv(weekly.content)
    assert weekly.headers["content-disposition"].startswith("attachment")
    total = rows[-1]
    assert total["satisfaction_count"] == "1" and float(total["satisfaction_mean"]) == 4.0
    assert float(total["mean_lead_time_achieved_h"]) == 20.0  # to the confirmed failure
    assert float(total["downtime_h"]) == 6.0 and total["first_time_fix_rate"] == "1.0"
    assert len(rows) >= 5  # about 26 weeks, then the whole period
    assert c.get("/kpis?start=2026-13-01").status_code == 400
    assert c.get("/kpis?bucket=year").status_code == 400


def test_closed_case_is_suggested_on_a_new_similar_alert(fleet: Fleet) -> None:
    wo_id = add_closed_case(fleet)
    c = DashboardClient(make_app(fleet), client=LOCAL)
    with fleet.session_factory() as s:
        case = s.scalars(select(FaultCase)).one()
        assert case.work_order_id == wo_id
    page = c.get(f"/alerts/{fleet.alert_id}").text
    section = page[page.index('id="similar-h"') :]
    assert f'data-case="{case.id}"' in section
    match = re.search(r'data-similarity="([0-9.]+)"', section)
    assert match is not None and float(match.group(1)) == 1.0  # the same evidence
    assert "same failure mode and asset kind" in _text(section)
    assert "Outer race spalled" in _text(c.get(f"/cases/{case.id}").text)
    listed = c.get("/cases?q=spalled").text
    assert f'href="/cases/{case.id}"' in listed
    assert f'href="/cases/{case.id}"' in c.get("/search?q=spalled").text
    assert c.get("/cases/999").status_code == 404


def test_asset_report_on_demand_and_filed_once_a_month(fleet: Fleet) -> None:
    add_closed_case(fleet)
    c = DashboardClient(make_app(fleet), client=LOCAL)
    month = fleet.now.strftime("%Y-%m")
    html = c.get(f"/reports/asset/pump-01?month={month}").text
    text = _text(html)
    assert "Operating report: Cooling pump 1" in text
    assert re.search(r'data-figure="zone">\s*latest <span class="zone zone-b">', html)
    assert "1.7 – 12.5 d" in text  # the open alert's RUL, 40 h to 300 h
    running = re.search(r'data-figure="running_hours">([0-9.]+) h', html)
    assert running is not None and float(running.group(1)) > 0
    rows = _csv(c.get(f"/reports/asset/pump-01?month={month}&format=csv").content)
    assert {"summary", "alert", "work_order"} <= {r["section"] for r in rows}
    assert any(r["item"] == "WO-1" and r["response_sla"] for r in rows)
    assert c.get("/reports/asset/nope").status_code == 404
    assert c.get("/reports/asset/pump-01?month=2026-13").status_code == 400

    later = fleet.now + timedelta(days=40)
    filed = file_reports(fleet.session_factory, fleet.store, later)
    assert filed == 3  # three assets, no customers in this fleet
    assert file_reports(fleet.session_factory, fleet.store, later) == 0
    with fleet.session_factory() as s:
        report = s.scalars(
            select(OperatingReport).where(OperatingReport.subject_id == "pump-01")
        ).one()
        assert report.html.startswith("<!doctype html>") and "Cooling pump 1" in report.html
        assert report.csv.startswith("\ufeffsection,")
    listing = c.get("/reports").text
    assert f'href="/reports/{report.id}"' in listing
    stored = c.get(f"/reports/{report.id}")
    assert stored.status_code == 200 and "Operating report: Cooling pump 1" in _text(stored.text)
    assert c.get(f"/reports/{report.id}/csv").content.startswith(b"\xef\xbb\xbfsection,")


def test_customer_report_lists_its_machines_only(fleet: Fleet) -> None:
    with fleet.session_factory() as s:
        s.add(Customer(id="acme", name="ACME 制造", tier="key"))
        s.flush()
        s.add(Site(id="acme-sh", customer_id="acme", name="Shanghai", timezone="Asia/Shanghai"))
        s.flush()
        for asset_id in ("pump-01", "fan-02"):
            asset = s.get(Asset, asset_id)
            assert asset is not None
            asset.site_id = "acme-sh"
        s.commit()
    c = DashboardClient(make_app(fleet), client=LOCAL)
    html = c.get("/reports/customer/acme").text
    assert "Operating report: ACME 制造" in _text(html)
    machines = html[html.index('class="report-machines"') :]
    machines = machines[: machines.index("</table>")]
    assert "Cooling pump 1" in machines and "Exhaust fan 2" in machines
    assert "Line motor 3" not in machines
    rows = _csv(c.get("/reports/customer/acme?format=csv").content)
    assert {r["asset_id"] for r in rows if r["section"] == "summary"} == {"pump-01", "fan-02"}
    assert c.get("/reports/customer/nobody").status_code == 404
    made = c.get("/reports/make?subject=customer:acme&month=2026-10", follow_redirects=False)
    assert made.headers["location"] == "/reports/customer/acme?month=2026-10"
