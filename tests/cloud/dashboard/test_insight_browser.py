"""The KPI page, an operating report and the alert page's similar cases in real headless
Chromium, in English and Simplified Chinese (the browser's Accept-Language), at desktop and
phone widths (no sideways scroll at 390 px), and the report as printed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from .conftest import Fleet, make_app, seed_fleet, serving
from .test_insight_pages import add_closed_case
from .test_workbench_browser import browser, no_sideways_scroll, shoot

pytestmark = pytest.mark.integration

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Fleet]]:

    fleet = seed_fleet(tmp_path, datetime.now(UTC).replace(microsecond=0))
    add_closed_case(fleet)
    with serving(make_app(fleet), fleet) as base:
        yield base, fleet


def _page(browser: Browser, width: int, language: str) -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        locale=language,
        extra_http_headers={"Accept-Language": language},
    )
    return context.new_page()


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_kpi_page_and_report_render_with_data(
    browser: Browser, served: tuple[str, Fleet], tmp_path: Path, language: str
) -> None:
    base, fleet = served
    tag = language.lower()
    zh = language == "zh-CN"
    for width in (1280, 390):
        page = _page(browser, width, language)
        page.goto(f"{base}/kpis", wait_until="load")
        assert page.locator("main h1").inner_text() == ("关键指标" if zh else "KPIs")
        assert page.locator("html").get_attribute("lang") == ("zh-CN" if zh else "en")
        assert page.locator("svg.bars rect.bar").count() > 0
        assert page.locator('[data-kpi="satisfaction"]').inner_text().startswith("4")
        no_sideways_scroll(page)
        shoot(page, f"insight-kpis-{tag}-{width}", tmp_path)

        page.goto(f"{base}/reports/asset/pump-01", wait_until="load")
        heading = page.locator("article.report h1").inner_text()
        assert heading == ("运行报告：Cooling pump 1" if zh else "Operating report: Cooling pump 1")
        assert page.locator("svg.trend path.line").count() >= 1
        assert page.locator(".report-orders tbody tr").count() >= 1
        no_sideways_scroll(page)
        shoot(page, f"insight-report-{tag}-{width}", tmp_path)

        page.goto(f"{base}/alerts/{fleet.alert_id}", wait_until="load")
        assert page.locator("#similar-h").inner_text() == (
            "相似的历史案例" if zh else "Similar past cases"
        )
        similar = page.locator("li.similar-case")
        assert similar.count() == 1 and "100 %" in similar.first.inner_text()
        no_sideways_scroll(page)
        if width == 390:
            shoot(page, f"insight-alert-similar-{tag}-{width}", tmp_path)
        page.context.close()


def test_report_prints_without_the_navigation(
    browser: Browser, served: tuple[str, Fleet], tmp_path: Path
) -> None:
    base, _fleet = served
    page = _page(browser, 1000, "en")
    page.goto(f"{base}/reports/asset/pump-01", wait_until="load")
    assert page.locator("header.top").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible()
    assert not page.locator(".report-actions").is_visible()
    assert page.locator("article.report h1").is_visible()
    shoot(page, "insight-report-print", tmp_path)
    page.context.close()
