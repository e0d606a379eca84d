"""The dashboard in real headless Chromium, served by uvicorn: each page loads, shows its key
content and charts, and its full-page screenshot is a real, non-blank picture; a form posted
from another origin is refused, and signing out ends the session for every copy of its cookie."""

from __future__ import annotations

import base64
import http.server
import os
import shutil
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import select

from cloud.dashboard.sessions import SESSION_COOKIE, csrf_token_for
from cloud.db.models import Part, StockLevel, Technician, Warehouse, WorkOrder

from .conftest import Fleet, make_app, seed_fleet, serving

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Set to a folder to keep the screenshots (e.g. to refresh docs/img).
SHOTS_ENV = "IRONWATCH_DASHBOARD_SHOTS"

# Distinct colours in a sampled screenshot of a page with charts and badges; a blank or
# unstyled page has a handful.
MIN_COLOURS = 40

COUNT_COLOURS_JS = """
async (dataUrl) => {
  const img = new Image();
  img.src = dataUrl;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  const seen = new Set();
  let busy = 0, total = 0;
  const bg = [data[0], data[1], data[2]];
  for (let y = 0; y < img.height; y += 3) {
    for (let x = 0; x < img.width; x += 3) {
      const i = (y * img.width + x) * 4;
      seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      total += 1;
      const d = Math.abs(data[i] - bg[0]) + Math.abs(data[i + 1] - bg[1])
        + Math.abs(data[i + 2] - bg[2]);
      if (d > 30) busy += 1;
    }
  }
  return {colours: seen.size, busy: busy / total, width: img.width, height: img.height};
}
"""


def png_size(png: bytes) -> tuple[int, int]:
    """Validate a PNG with the standard library (chunk CRCs, image data length); (w, h)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", body[:10])
            assert depth == 8
            channels = {2: 3, 6: 4}[colour_type]
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + width * channels)
    return width, height


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Fleet]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    fleet = seed_fleet(tmp_path_factory.mktemp("fleet"), datetime.now(UTC).replace(microsecond=0))
    with serving(make_app(fleet), fleet) as base:
        yield base, fleet


@pytest.fixture(scope="module")
def browser(served: tuple[str, Fleet]) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def shoot(page: Page, name: str, out: Path) -> Path:
    """Full-page screenshot, checked as a PNG and for being a real picture."""
    path = out / f"{name}.png"
    png = page.screenshot(path=str(path), full_page=True)
    width, height = png_size(png)
    assert width >= 1200 and height >= 600
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    stats = page.evaluate(COUNT_COLOURS_JS, url)
    assert stats["width"] == width
    assert stats["colours"] >= MIN_COLOURS, stats
    assert stats["busy"] > 0.05, stats  # more than a blank background
    keep = os.environ.get(SHOTS_ENV)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    # Nothing may come from the internet: fail any request that leaves the loopback host.
    outside: list[str] = []
    pg.on(
        "request",
        lambda r: (
            None if r.url.startswith(("http://127.0.0.1", "data:")) else outside.append(r.url)
        ),
    )
    try:
        yield pg
    finally:
        context.close()
        assert outside == []


def test_fleet_page(served: tuple[str, Fleet], page: Page, tmp_path: Path) -> None:
    base, _ = served
    pg = page
    pg.goto(base + "/", wait_until="load")
    for name in ("Cooling pump 1", "Exhaust fan 2", "Line motor 3"):
        assert pg.get_by_role("link", name=name).first.is_visible()
    assert pg.locator(".asset-card .sev-alarm").first.is_visible()
    assert pg.locator(".zone-b .zone-letter").first.inner_text() == "B"
    assert pg.locator("tr.overdue-row").count() == 1
    assert pg.get_by_text("gw-hall-b offline").is_visible()
    shoot(pg, "fleet", tmp_path)


def test_asset_page(served: tuple[str, Fleet], page: Page, tmp_path: Path) -> None:
    base, _ = served
    pg = page
    pg.goto(base + "/assets/pump-01", wait_until="load")
    assert pg.get_by_role("heading", name="Cooling pump 1").is_visible()
    velocity = pg.locator("svg.trend").first
    assert velocity.is_visible()
    assert int(velocity.locator("path.line").get_attribute("data-points") or 0) > 150
    assert velocity.locator("rect.band").count() >= 3
    envelope = pg.locator("svg.spectrum").nth(1)
    bpfo = envelope.locator('line.marker[data-label="BPFO"]')
    assert bpfo.count() == 1
    assert envelope.locator("text.marker-label", has_text="BPFO").first.is_visible()
    # The BPFO marker is drawn where the envelope spectrum peaks, in the rendered page too.
    box = bpfo.bounding_box()
    assert box is not None and box["height"] > 50
    assert pg.get_by_text("env_bpfo_ms2").first.is_visible()
    assert pg.locator("svg.rul rect.rul-interval").is_visible()
    shoot(pg, "asset", tmp_path)


def test_work_order_board(served: tuple[str, Fleet], page: Page, tmp_path: Path) -> None:
    base, _ = served
    pg = page
    pg.goto(base + "/work-orders", wait_until="load")
    p1 = pg.locator("article.wo", has=pg.locator(".prio-p1"))
    assert p1.count() == 1 and p1.is_visible()
    assert "OVERDUE" in p1.inner_text() and "Cooling pump 1" in p1.inner_text()
    columns = pg.locator("section.column h2").all_inner_texts()
    assert [c.split()[0] for c in columns] == ["Open", "Assigned", "In", "Done"]
    shoot(pg, "work-orders", tmp_path)


def test_alert_page(served: tuple[str, Fleet], page: Page, tmp_path: Path) -> None:
    base, fleet = served
    pg = page
    pg.goto(f"{base}/alerts/{fleet.alert_id}", wait_until="load")
    assert pg.get_by_role("heading", name="Why the model fired").is_visible()
    assert pg.get_by_text("escalated").is_visible()
    assert pg.locator("table.evidence").count() == 2
    shoot(pg, "alert", tmp_path)


def test_sign_in_in_the_browser(served: tuple[str, Fleet], page: Page) -> None:
    base, fleet = served
    pg = page
    pg.goto(base + "/login?next=/assets/fan-02", wait_until="load")
    pg.get_by_label("API token").fill(fleet.engineer_token)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url("**/assets/fan-02")
    pg.get_by_role("button", name="Request a new snapshot").click()
    pg.wait_for_url("**/assets/fan-02?snapshot=*")
    assert pg.get_by_text("Snapshot requested").is_visible()
    assert fleet.requested[-1] == ("fan-02", None, "token:eng-1")


@pytest.fixture
def other_site() -> Iterator[Callable[[str], str]]:
    """A second web server on another port of 127.0.0.1 (another origin, the same site):
    `put(html)` serves the page and returns its URL."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, b"not found")
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="other-site", daemon=True)
    thread.start()

    def put(html: str) -> str:
        path = f"/page-{len(pages)}.html"
        pages[path] = html.encode("utf-8")
        return f"http://127.0.0.1:{server.server_address[1]}{path}"

    try:
        yield put
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _sign_in(page: Page, base: str, token: str) -> str:
    page.goto(base + "/login?next=/assets/fan-02", wait_until="load")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/assets/fan-02")
    cookies = {c["name"]: c["value"] for c in page.context.cookies(base)}
    return cookies[SESSION_COOKIE]


def test_cross_origin_form_post_is_refused(
    served: tuple[str, Fleet], page: Page, other_site: Callable[[str], str]
) -> None:
    base, fleet = served
    _sign_in(page, base, fleet.engineer_token)
    before = list(fleet.requested)
    # Even a page that somehow knew the form token (leaked) is refused: its Origin is not ours.
    leaked = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    for token in ("guessed", leaked):
        attack = other_site(
            f'<form id="f" method="post" action="{base}/assets/fan-02/snapshot">'
            f'<input type="hidden" name="csrf_token" value="{token}"></form>'
            '<script>document.getElementById("f").submit()</script>'
        )
        with page.expect_response(f"{base}/assets/fan-02/snapshot") as answer:
            page.goto(attack)
        response = answer.value
        assert response.status == 403
        assert (response.request.headers.get("origin") or "").startswith("http://127.0.0.1:")
        assert response.request.headers["origin"] != base
        assert "Refused" in page.content()
    assert fleet.requested == before
    # The session itself is fine: the dashboard's own form still works.
    page.goto(base + "/assets/fan-02", wait_until="load")
    page.get_by_role("button", name="Request a new snapshot").click()
    page.wait_for_url("**/assets/fan-02?snapshot=*")
    assert fleet.requested == [*before, ("fan-02", None, "token:eng-1")]


def test_sign_out_ends_the_session(served: tuple[str, Fleet], browser: Browser) -> None:
    base, fleet = served
    context = browser.new_context()
    page = context.new_page()
    old = _sign_in(page, base, fleet.engineer_token)
    assert page.get_by_text("token:eng-1").is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert SESSION_COOKIE not in {c["name"] for c in context.cookies(base)}
    context.close()
    # Another browser holding a copy of the old cookie: not signed in any more.
    thief = browser.new_context()
    try:
        thief.add_cookies([{"name": SESSION_COOKIE, "value": old, "url": base}])
        stolen = thief.new_page()
        stolen.goto(base + "/assets/fan-02", wait_until="load")
        # Only the read-only view a browser on this host gets without signing in.
        assert stolen.get_by_text("read-only").is_visible()
        assert stolen.get_by_text("token:eng-1").count() == 0
        assert stolen.get_by_role("button", name="Request a new snapshot").count() == 0
        before = list(fleet.requested)
        refused = thief.request.post(
            base + "/assets/fan-02/snapshot",
            form={"csrf_token": csrf_token_for(old)},
            headers={"Origin": base},
            max_redirects=0,
        )
        assert refused.status == 403
        assert fleet.requested == before
    finally:
        thief.close()


def test_dispatch_from_the_work_order_board(
    served: tuple[str, Fleet], browser: Browser, tmp_path: Path
) -> None:
    """Open the pump's work order from the board, see the suggested technician with the
    reasons and the parts, assign them, and find the assignment in the history."""
    base, fleet = served
    with fleet.session_factory() as s:
        every_day = {d: ["00:00", "24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                     "sun")}
        s.add_all([
            Technician(name="Rosa Bearings", failure_modes=["bearing_outer_race"],
                       asset_kinds=["pump"], region="north", calendar={"weekly": every_day}),
            Technician(name="Sam Fans", failure_modes=["imbalance"], asset_kinds=["fan"],
                       region="north", calendar={"weekly": every_day}),
            Warehouse(id="wh-central", name="Central", region="north"),
            Part(id="BRG-6205-2RS", name="Deep groove ball bearing 6205-2RS"),
            Part(id="GRS-LGMT2-400", name="Bearing grease 400 g"),
        ])
        s.flush()
        s.add_all([
            StockLevel(part_id="BRG-6205-2RS", warehouse_id="wh-central", on_hand=4,
                       reserved=0, reorder_level=2),
            StockLevel(part_id="GRS-LGMT2-400", warehouse_id="wh-central", on_hand=1,
                       reserved=0, reorder_level=0),
        ])
        s.commit()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    try:
        pg.goto(base + "/login?next=/work-orders", wait_until="load")
        pg.get_by_label("API token").fill(fleet.desk_token)
        pg.get_by_role("button", name="Sign in").click()
        pg.wait_for_url("**/work-orders")
        pg.get_by_role("link", name="Inspect bearing outer race").click()
        pg.wait_for_url("**/work-orders/*")
        suggestions = pg.locator("li.suggestion")
        first = suggestions.first
        assert "Rosa Bearings" in first.inner_text()
        assert "skilled in bearing_outer_race" in first.inner_text()
        assert "Sam Fans" in suggestions.nth(1).inner_text()
        parts = pg.locator("table.parts-table").inner_text()
        assert "BRG-6205-2RS" in parts and "not reserved" in parts
        shoot(pg, "dashboard-work-order", tmp_path)
        first.get_by_role("radio").check()
        pg.locator("#assign-button").click()
        pg.wait_for_load_state("load")
        assert pg.locator("#wo-state").text_content() == "assigned"
        assert pg.locator("#wo-assignee").inner_text() == "Rosa Bearings"
        history = pg.locator("#wo-history").inner_text()
        assert "open → assigned" in history and "Rosa Bearings" in history
        assert "by token:desk-1" in history
        parts = pg.locator("table.parts-table").inner_text()
        assert parts.count("reserved") == 2 and "not reserved" not in parts
        assert pg.get_by_role("button", name="Start on site").is_visible()
        shoot(pg, "dashboard-work-order-assigned", tmp_path)
        # On a phone the page stacks and scrolls vertically only.
        pg.set_viewport_size({"width": 390, "height": 844})
        pg.reload(wait_until="load")
        wide = pg.evaluate(
            "() => [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > 392)"
            ".slice(0, 8).map(e => e.tagName + '.' + e.className)"
        )
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390, wide
        pg.screenshot(path=str(tmp_path / "work-order-phone.png"), full_page=True)
    finally:
        context.close()
    with fleet.session_factory() as s:
        wo = s.scalars(select(WorkOrder).where(WorkOrder.asset_id == "pump-01")).first()
        assert wo is not None and wo.assignee == "Rosa Bearings" and wo.technician_id
