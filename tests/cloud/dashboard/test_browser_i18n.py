"""The dashboard in real headless Chromium in Chinese and English, with the browser's time
zone, and on a phone: every page fits a 390 px wide screen without scrolling sideways."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from cloud.api import api_router, install_error_handlers

from .conftest import ADMIN_TOKEN, Fleet, make_app, seed_fleet, serving
from .test_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS_ENV, png_size

pytestmark = pytest.mark.integration

REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1400, "height": 900}


def seed_ingestion(fleet: Fleet) -> None:
    """Gateway events and dead letters with long unbroken payloads: the widest tables."""
    from cloud.domain.deadletters import DbDeadLetterStore
    from cloud.domain.gateways import note_epoch
    from cloud.ingest import DeadLetter

    with fleet.session_factory() as session:
        for epoch in ("aaaaaaaa", "bbbbbbbb"):
            note_epoch(session, gateway_id="gw-hall-a", epoch=epoch, first_seq=0, now=fleet.now)
        session.commit()
    DbDeadLetterStore(fleet.session_factory).put_many([
        DeadLetter.make("ironwatch/v1/gw-hall-a/telemetry", b'{"seq":7,' + b'"x"' * 60 + b"}",
                        "conflict", "seq 7 is stored already with other content",
                        max_payload_bytes=2048, gateway_id="gw-hall-a", seq=7),
    ])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Fleet]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    fleet = seed_fleet(tmp_path_factory.mktemp("fleet"), datetime.now(UTC).replace(microsecond=0))
    seed_ingestion(fleet)
    app = make_app(fleet)
    # The API beside the pages, as in cloud/app.py, so the docs pages describe it.
    app.title = "Ironwatch"
    install_error_handlers(app)
    app.include_router(api_router())
    with serving(app, fleet) as base:
        yield base, fleet


@pytest.fixture(scope="module")
def browser(served: tuple[str, Fleet]) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shots")


def keep(page: Page, name: str, shots: Path) -> Path:
    """A full-page screenshot, checked to be a PNG, kept under `shots` (and $SHOTS_ENV)."""
    path = shots / f"{name}.png"
    width, height = png_size(page.screenshot(path=str(path), full_page=True))
    assert width > 0 and height > 0
    folder = os.environ.get(SHOTS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)
    return path


def new_context(
    browser: Browser, *, locale: str, zone: str, viewport: ViewportSize = DESKTOP
) -> BrowserContext:
    return browser.new_context(locale=locale, timezone_id=zone, viewport=viewport)


def pages(fleet: Fleet) -> list[tuple[str, str]]:
    return [
        ("fleet", "/"),
        ("asset", "/assets/pump-01"),
        ("alert", f"/alerts/{fleet.alert_id}"),
        ("work-orders", "/work-orders"),
        ("work-order-list", "/work-orders?view=list"),
        ("alerts", "/alerts"),
        ("assets", "/assets"),
        ("search", "/search?q=pump"),
        ("maintenance", "/maintenance"),
        ("ingestion", "/ingestion"),
        ("login", "/login"),
        ("preferences", "/preferences"),
        ("error", "/assets/no-such-asset"),
    ]


def test_chinese_from_the_browser_then_english_from_the_switch(
    served: tuple[str, Fleet], browser: Browser, shots: Path
) -> None:
    base, fleet = served
    context = new_context(browser, locale="zh-CN", zone="Asia/Shanghai")
    try:
        pg = context.new_page()
        pg.goto(base + "/", wait_until="load")
        # The first page told the server the zone (tz.js); every later page uses it.
        assert any(c["name"] == "tz" and c["value"] == "Asia/Shanghai" for c in context.cookies())
        pg.reload(wait_until="load")
        assert pg.locator("html").get_attribute("lang") == "zh-CN"
        assert pg.get_by_role("heading", name="设备总览").is_visible()
        assert pg.get_by_role("link", name="工单").first.is_visible()
        due = pg.locator("tr.overdue-row").inner_text()
        assert "已逾期" in due and re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} CST", due), due
        keep(pg, "zh-fleet", shots)

        pg.goto(f"{base}/assets/pump-01", wait_until="load")
        assert pg.get_by_role("heading", name="剩余使用寿命").is_visible()
        assert pg.get_by_text("时间按 Asia/Shanghai (CST, UTC+08:00) 显示。").is_visible()
        assert pg.locator("figcaption", has_text="振动速度有效值").is_visible()
        keep(pg, "zh-asset", shots)

        pg.goto(f"{base}/alerts/{fleet.alert_id}", wait_until="load")
        assert pg.get_by_role("heading", name="模型为何告警").is_visible()
        assert pg.get_by_text("轴承外圈故障").first.is_visible()
        history = pg.locator("ol.timeline").inner_text()
        assert "CST" in history and "已升级" in history
        keep(pg, "zh-alert", shots)

        pg.goto(f"{base}/work-orders", wait_until="load")
        assert pg.get_by_role("heading", name="工单看板").is_visible()
        columns = pg.locator("section.column h2").all_inner_texts()
        assert [c.split()[0] for c in columns] == ["待处理", "已指派", "进行中", "已完成"]
        keep(pg, "zh-work-orders", shots)

        # The switch in the header: English from now on, on the same page.
        pg.get_by_role("button", name="English").click()
        pg.wait_for_url("**/work-orders")
        assert pg.locator("html").get_attribute("lang") == "en"
        assert pg.get_by_role("heading", name="Work-order board").is_visible()
        pg.goto(base + "/", wait_until="load")
        assert pg.get_by_role("heading", name="Fleet overview").is_visible()
        assert "CST" in pg.locator("tr.overdue-row").inner_text()
        keep(pg, "en-fleet-after-switch", shots)
        # ... and back.
        pg.get_by_role("button", name="中文").click()
        pg.wait_for_url(base + "/")
        assert pg.locator("html").get_attribute("lang") == "zh-CN"
    finally:
        context.close()


def test_english_browser_gets_english_in_its_own_zone(
    served: tuple[str, Fleet], browser: Browser, shots: Path
) -> None:
    base, fleet = served
    context = new_context(browser, locale="en-US", zone="Europe/Berlin")
    try:
        pg = context.new_page()
        pg.goto(f"{base}/alerts/{fleet.alert_id}", wait_until="load")
        pg.reload(wait_until="load")
        assert pg.locator("html").get_attribute("lang") == "en"
        assert pg.get_by_role("heading", name="Why the model fired").is_visible()
        assert pg.get_by_text("Times in Europe/Berlin (CET, UTC+01:00).").is_visible()
        assert re.search(r"\d{2}:\d{2} CET", pg.locator("ol.timeline").inner_text())
        keep(pg, "en-alert", shots)
    finally:
        context.close()


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_no_page_scrolls_sideways_on_a_phone(
    served: tuple[str, Fleet], browser: Browser, shots: Path, locale: str
) -> None:
    base, fleet = served
    context = new_context(browser, locale=locale, zone="Asia/Shanghai", viewport=PHONE)
    try:
        pg = context.new_page()
        too_wide: dict[str, int] = {}
        for name, path in pages(fleet):
            pg.goto(base + path, wait_until="load")
            width = int(pg.evaluate("document.documentElement.scrollWidth"))
            if width > PHONE["width"]:
                too_wide[name] = width
            keep(pg, f"phone-{locale}-{name}", shots)
        assert too_wide == {}, f"pages wider than {PHONE['width']} px: {too_wide}"
        # Wide tables scroll inside their own box instead.
        pg.goto(base + "/ingestion", wait_until="load")
        box = pg.locator(".table-scroll").last
        assert int(box.evaluate("e => e.scrollWidth")) >= int(box.evaluate("e => e.clientWidth"))
    finally:
        context.close()


def test_api_docs_work_offline(
    served: tuple[str, Fleet], browser: Browser, shots: Path
) -> None:
    base, _fleet = served
    context = new_context(browser, locale="en-US", zone="UTC")
    try:
        pg = context.new_page()
        outside: list[str] = []
        blocked: list[str] = []
        failed: list[str] = []
        pg.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:"))
              else outside.append(r.url))
        pg.on("requestfailed", lambda r: failed.append(r.url))
        # ReDoc's "API docs by Redocly" credit points at its CDN; the policy keeps it out.
        pg.on("console", lambda m: blocked.append(m.text)
              if "Content Security Policy" in m.text and "cdn.redoc.ly" not in m.text
              else None)
        pg.goto(base + "/docs", wait_until="load")
        pg.locator(".swagger-ui .info .title").wait_for(timeout=15000)
        assert "Ironwatch" in pg.locator(".swagger-ui .info .title").inner_text()
        pg.locator(".swagger-ui .opblock").first.wait_for()
        assert pg.locator(".swagger-ui .opblock").count() > 10  # the API's operations
        # A token pasted into Authorize is what "Try it out" sends.
        pg.get_by_role("button", name="Authorize").first.click()
        pg.locator(".auth-container input").first.fill(ADMIN_TOKEN)
        pg.locator(".auth-container .btn.authorize").click()
        assert pg.locator(".auth-container .btn", has_text="Logout").is_visible()
        pg.locator(".modal-ux .btn-done").click()
        # "Try it out" on the alert list: the pasted token makes it a 200.
        op = pg.locator("#operations-alerts-list_alerts_api_v1_alerts_get")
        op.locator(".opblock-summary").click()
        op.get_by_role("button", name="Try it out").click()
        op.get_by_role("button", name="Execute").click()
        status = op.locator(".live-responses-table tbody .response-col_status").first
        status.wait_for()
        assert status.inner_text().strip().startswith("200"), status.inner_text()
        keep(pg, "api-docs-swagger", shots)
        pg.goto(base + "/redoc", wait_until="load")
        pg.locator(".api-info h1").wait_for(timeout=15000)
        assert "Ironwatch" in pg.locator(".api-info h1").inner_text()
        keep(pg, "api-docs-redoc", shots)
        # The only outside address is ReDoc's credit logo, and the policy stopped it.
        assert set(outside) <= {REDOCLY_LOGO} and set(outside) <= set(failed), (outside, failed)
        assert blocked == []
    finally:
        context.close()
