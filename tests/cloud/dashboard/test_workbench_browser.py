"""The engineer's workbench in real headless Chromium: an engineer acknowledges an alert and
gives verdicts, a service-desk user filters the board by two states and downloads the CSV,
search finds an asset and an alert, and the new pages do not scroll sideways at 390 px."""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .conftest import Fleet, make_app, seed_fleet, serving
from .test_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS_ENV, png_size

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Fleet]]:
    """A fresh fleet per test: the flows change it."""
    fleet = seed_fleet(tmp_path, datetime.now(UTC).replace(microsecond=0))
    with serving(make_app(fleet), fleet) as base:
        yield base, fleet


def _page(browser: Browser, width: int = 1280) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    return context.new_page()


def shoot(page: Page, name: str, out: Path) -> Path:
    path = out / f"{name}.png"
    width, height = png_size(page.screenshot(path=str(path), full_page=True))
    assert width > 300 and height > 300
    keep = os.environ.get(SHOTS_ENV)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def sign_in(page: Page, base: str, token: str, target: str) -> None:
    page.goto(f"{base}/login?next={target}", wait_until="load")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{target}")


def no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow} px"


def test_engineer_acknowledges_and_gives_verdicts(
    served: tuple[str, Fleet], browser: Browser, tmp_path: Path
) -> None:
    base, fleet = served
    page = _page(browser)
    alert = f"/alerts/{fleet.alert_id}"
    sign_in(page, base, fleet.engineer_token, alert)
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_url(f"**{alert}?done=acknowledged")
    assert page.get_by_role("status").inner_text() == "Alert acknowledged."
    assert page.get_by_role("button", name="Acknowledge").count() == 0

    # A first verdict, "confirmed", then the engineer changes their mind.
    form = page.locator("form.verdict-form")
    form.get_by_label("Confirmed fault").check()
    form.get_by_label("Reason").fill("BPFO harmonics on the envelope spectrum")
    form.get_by_role("button", name="Record verdict").click()
    page.wait_for_url(f"**{alert}?done=verdict")
    form = page.locator("form.verdict-form")
    form.get_by_label("False alarm").check()
    form.get_by_label("Reason").fill("Loose sensor mount; re-glued, readings normal")
    form.get_by_label("Failure mode found (if not the alert's)").select_option("looseness")
    form.get_by_role("button", name="Record verdict").click()
    page.wait_for_url(f"**{alert}?done=verdict")

    verdicts = page.locator("ol.verdicts > li")
    assert verdicts.count() == 2
    first, second = verdicts.nth(0).inner_text(), verdicts.nth(1).inner_text()
    assert "Confirmed fault" in first and "BPFO harmonics" in first and "token:eng-1" in first
    assert "False alarm" in second and "Loose sensor mount" in second
    assert "alert resolved" in second and "work order WO-1 cancelled" in second
    assert "looseness" in second
    assert page.locator(".state-resolved").first.is_visible()
    assert page.locator("li.event-verdict").count() == 2
    shoot(page, "workbench-alert-verdicts", tmp_path)
    page.context.close()


def test_service_desk_filters_board_by_two_states_and_exports(
    served: tuple[str, Fleet], browser: Browser, tmp_path: Path
) -> None:
    base, fleet = served
    page = _page(browser)
    sign_in(page, base, fleet.desk_token, "/work-orders")
    filters = page.locator("form.filters")
    states = filters.locator("fieldset", has=page.locator("legend", has_text="State"))
    states.get_by_label("open", exact=True).check()
    states.get_by_label("in progress").check()
    filters.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/work-orders?*")
    assert "state=open" in page.url and "state=in_progress" in page.url
    columns = page.locator("section.column h2").all_inner_texts()
    assert [c.split()[0] for c in columns] == ["Open", "In"]
    assert page.locator("article.wo").count() == 2
    shoot(page, "workbench-board-filtered", tmp_path)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    saved = tmp_path / "board.csv"
    download.value.save_as(saved)
    body = saved.read_bytes()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert sorted((r["state"], r["asset_name"], r["priority"]) for r in rows) == [
        ("in_progress", "Line motor 3", "P3"),
        ("open", "Cooling pump 1", "P1"),
    ]
    page.context.close()


def test_search_finds_asset_and_alert(
    served: tuple[str, Fleet], browser: Browser, tmp_path: Path
) -> None:
    base, _ = served
    page = _page(browser)
    page.goto(base + "/", wait_until="load")
    page.get_by_role("link", name="Search").click()
    page.get_by_role("searchbox").fill("exhaust")
    page.get_by_role("button", name="Search").click()
    assert page.locator("li.hit-asset a", has_text="Exhaust fan 2").is_visible()
    page.get_by_role("searchbox").fill("outer race")
    page.get_by_role("button", name="Search").click()
    hit = page.locator("li.hit-alert a", has_text="bearing outer race")
    assert hit.is_visible()
    shoot(page, "workbench-search", tmp_path)
    hit.click()
    page.wait_for_url("**/alerts/1")
    page.context.close()


def test_new_pages_fit_a_phone(
    served: tuple[str, Fleet], browser: Browser, tmp_path: Path
) -> None:
    base, fleet = served
    page = _page(browser, width=390)
    sign_in(page, base, fleet.engineer_token, f"/alerts/{fleet.alert_id}")
    for path, name in (
        (f"/alerts/{fleet.alert_id}", "phone-alert"),
        ("/alerts?state=open&state=resolved", "phone-alerts"),
        ("/work-orders?view=list", "phone-work-order-list"),
        ("/assets", "phone-assets"),
        ("/search?q=pump", "phone-search"),
    ):
        page.goto(base + path, wait_until="load")
        no_sideways_scroll(page)
        shoot(page, name, tmp_path)
    page.context.close()
