"""The maintenance calendar page: rows per customer and site, filters, and in headless
Chromium on a desktop and a 390 px phone (screenshots in the test's tmp folder)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from cloud.db.models import Asset
from cloud.domain.reminders import create_plan

from .conftest import LOCAL, DashboardClient, Fleet, make_app, seed_fleet, serving
from .test_browser import CHROMIUM, CHROMIUM_ARGS
from .test_portal import add_customers
from .test_portal_browser import PHONE, no_horizontal_overflow, shoot


def _plans(fleet: Fleet) -> None:
    """pump-01 runs 20 h a day, 266 h short of 1500 h; every fan is inspected quarterly."""
    with fleet.session_factory() as s:
        pump = s.get(Asset, "pump-01")
        assert pump is not None
        pump.running_hours_per_day = 20.0
        create_plan(s, asset_id="pump-01", interval_hours=500, name="Bearing regreasing",
                    priority="P2", now=fleet.now - timedelta(days=30))
        pump.running_hours = 1234.0 + 500.0 - 266.0
        create_plan(s, asset_kind="fan", interval_days=90, name="Quarterly fan inspection",
                    task="inspection", now=fleet.now - timedelta(days=10))
        create_plan(s, asset_id="motor-03", interval_hours=4000, interval_days=365,
                    name="Annual motor service", now=fleet.now)
        s.commit()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    # The page dates from the service's clock: the real one.
    made = seed_fleet(tmp_path, datetime.now(UTC).replace(microsecond=0))
    add_customers(made)
    _plans(made)
    yield made
    made.store.close()
    made.session_factory.kw["bind"].dispose()


def test_calendar_lists_plans_soonest_first_per_customer_and_site(fleet: Fleet) -> None:
    with DashboardClient(make_app(fleet), client=LOCAL) as client:
        page = client.get("/maintenance")
        assert page.status_code == 200
        html = page.text
        # The pump is due in 266 h / 20 h a day = 13.3 days; the fan in 80 days.
        assert html.index("Bearing regreasing") < html.index("Quarterly fan inspection")
        assert "in 13.3 days" in html and "in 80 days" in html and "3 planned services" in html
        assert "ACME Steel · Shanghai works" in html
        assert "Bolt Foods · Bolt Berlin" in html
        only_bolt = client.get("/maintenance?customer=bolt").text
        assert "Annual motor service" in only_bolt and "Bearing regreasing" not in only_bolt
        # The same list as CSV, filtered the same way.
        export = client.get("/maintenance?customer=acme&format=csv")
        assert export.headers["content-type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
        assert table[0][:3] == ["expected_at", "asset_id", "asset_name"]
        assert [r[1] for r in table[1:]] == ["pump-01", "fan-02"]
        # The asset page shows where its running hours come from.
        assert "no telemetry counted yet" in client.get("/assets/pump-01").text


@pytest.mark.integration
def test_calendar_in_chromium_fits_a_phone(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    fleet = seed_fleet(tmp_path_factory.mktemp("fleet"), datetime.now(UTC).replace(microsecond=0))
    add_customers(fleet)
    _plans(fleet)
    with serving(make_app(fleet), fleet) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/maintenance", wait_until="load")
            rows = page.locator("table.maintenance tbody tr")
            assert rows.count() == 3  # the pump, the fan (of its kind), the motor
            page.get_by_label("Customer").select_option("bolt")
            page.get_by_role("button", name="Show").click()
            page.wait_for_url("**/maintenance?customer=bolt*")
            assert page.locator("table.maintenance tbody tr").count() == 1
            shoot(page, "maintenance-desktop", tmp_path)
            phone = browser.new_page(viewport=PHONE)
            phone.goto(base + "/maintenance", wait_until="load")
            # The page fits; its wide table scrolls inside its own box.
            no_horizontal_overflow(phone)
            box = phone.locator("table.maintenance").first.evaluate(
                "t => t.parentElement.scrollWidth > t.parentElement.clientWidth"
            )
            assert box, "the table should scroll in its box at 390 px"
            shoot(phone, "maintenance-phone", tmp_path)
            page.goto(base + "/maintenance", wait_until="load")
            shoot(page, "maintenance-desktop-all", tmp_path)
        finally:
            browser.close()
