"""The customer portal in real headless Chromium: a customer signs in with its token, sees
its own machines only, reports a fault, rates finished work; the pages fit a phone.

Screenshots land in the test's tmp folder (and in $IRONWATCH_DASHBOARD_SHOTS if set)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright
from sqlalchemy import select

from cloud.db.models import WorkOrder

from .conftest import Fleet, make_app, seed_fleet, serving
from .test_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS_ENV, png_size
from .test_portal import add_customers

pytestmark = pytest.mark.integration

PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Fleet, dict[str, str]]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    fleet = seed_fleet(tmp_path_factory.mktemp("fleet"), datetime.now(UTC).replace(microsecond=0))
    tokens = add_customers(fleet)
    with serving(make_app(fleet), fleet) as base:
        yield base, fleet, tokens


@pytest.fixture(scope="module")
def browser(served: tuple[str, Fleet, dict[str, str]]) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def shoot(page: Page, name: str, out: Path) -> None:
    path = out / f"{name}.png"
    width, height = png_size(page.screenshot(path=str(path), full_page=True))
    assert width > 0 and height > 0
    keep = os.environ.get(SHOTS_ENV)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def sign_in(page: Page, base: str, token: str) -> None:
    page.goto(base + "/login?next=/", wait_until="load")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/portal")


def no_horizontal_overflow(page: Page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow} px wider than the screen"


def test_a_customer_uses_the_portal(
    served: tuple[str, Fleet, dict[str, str]], browser: Browser, tmp_path: Path
) -> None:
    base, fleet, tokens = served
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, base, tokens["acme"])
        machines = page.locator("h2.machine-name").all_inner_texts()
        assert sorted(machines) == ["Cooling pump 1", "Exhaust fan 2"]
        assert page.get_by_text("Line motor 3").count() == 0
        assert page.locator("ol.progress").first.is_visible()
        assert page.locator(".zone-b .zone-letter").first.inner_text() == "B"
        shoot(page, "portal", tmp_path)

        # Report a fault on the fan.
        report = page.locator("section.report")
        report.get_by_label("Machine").select_option("fan-02")
        report.get_by_label("What is wrong?").fill("Rattling at start-up, louder every day")
        report.get_by_role("button", name="Report the fault").click()
        page.wait_for_url("**/portal/work-orders/*?done=reported")
        assert page.get_by_text("Your report is a work order now").is_visible()
        assert page.get_by_role("heading", name="Reported fault on Exhaust fan 2").is_visible()
        shoot(page, "portal-reported", tmp_path)
        with fleet.session_factory() as s:
            wo = s.scalars(select(WorkOrder).where(WorkOrder.source == "customer")).one()
            assert wo.asset_id == "fan-02" and wo.state == "open"

        # Rate the fan's finished service.
        page.goto(base + "/portal", wait_until="load")
        form = page.locator("form.rating-form").first
        form.get_by_label("5").check()
        form.get_by_label("Comment (optional)").fill("On time and tidy")
        form.get_by_role("button", name="Send rating").click()
        page.wait_for_url("**/portal/work-orders/*?done=rated")
        assert page.locator(".stars").first.inner_text() == "★★★★★"
        shoot(page, "portal-rated", tmp_path)
        with fleet.session_factory() as s:
            rated = s.scalars(select(WorkOrder).where(WorkOrder.satisfaction.is_not(None))).one()
            assert (rated.asset_id, rated.satisfaction, rated.feedback) == (
                "fan-02", 5, "On time and tidy"
            )

        # Another customer's machine, by URL: not found, like one that does not exist.
        response = page.goto(base + "/portal/assets/motor-03", wait_until="load")
        assert response is not None and response.status == 404
        assert page.get_by_text("There is no machine motor-03.").is_visible()
        staff = page.goto(base + "/assets/motor-03", wait_until="load")
        assert staff is not None and staff.status == 404
    finally:
        context.close()


def test_the_portal_fits_a_phone(
    served: tuple[str, Fleet, dict[str, str]], browser: Browser, tmp_path: Path
) -> None:
    base, _, tokens = served
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, base, tokens["acme"])
        no_horizontal_overflow(page)
        shoot(page, "portal-phone", tmp_path)
        page.goto(base + "/portal/assets/pump-01", wait_until="load")
        assert page.get_by_role("heading", name="Cooling pump 1").is_visible()
        no_horizontal_overflow(page)
        shoot(page, "portal-asset-phone", tmp_path)
        page.locator("h3 a").first.click()
        page.wait_for_url("**/portal/work-orders/*")
        no_horizontal_overflow(page)
        shoot(page, "portal-work-order-phone", tmp_path)
    finally:
        context.close()
