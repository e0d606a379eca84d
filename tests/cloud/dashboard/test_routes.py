"""Each page over TestClient on the seeded fleet: content, links, access rules, failure modes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from cloud.api import make_context
from cloud.dashboard import mount_dashboard
from cloud.dashboard.auth import COOKIE_NAME
from cloud.pipeline import ScoringHealth
from cloud.telemetry import FeatureFrame, StoreUnavailableError, TelemetryReader
from ironwatch.wire import WaveformSnapshot

from .conftest import ADMIN_TOKEN, LOCAL, DashboardClient, Fleet, TestClient, make_app


def signed_in(fleet: Fleet, token: str, *, with_snapshot: bool = True) -> TestClient:
    c = DashboardClient(make_app(fleet, with_snapshot=with_snapshot), client=LOCAL)
    r = c.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    return c


def test_fleet_overview(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    for name in ("Cooling pump 1", "Exhaust fan 2", "Line motor 3"):
        assert name in html
    assert '<meta http-equiv="refresh" content="5">' in html
    # The pump is worst (alarm) and listed first; its card shows zone, score and RUL.
    assert html.index("Cooling pump 1") < html.index("Exhaust fan 2")
    assert 'class="sev sev-alarm"' in html
    assert "2.4 / 1" in html
    assert "5.0 d" in html and "1.7 – 12.5 d" in html
    assert 'class="zone zone-b"' in html and 'class="zone zone-a"' in html
    assert "no recent data" in html  # motor-03 has no telemetry
    # A velocity sparkline over the zones on each card with data (the last 30 min).
    assert html.count('class="chart spark"') == 2
    assert 'class="muted spark-empty"' in html
    assert "gw-hall-b offline" in html and "gw-hall-a online" in html
    # Work orders due: the P1 is overdue on its response and sorted first.
    due = html[html.index("Work orders due") :]
    assert due.index("P1") < due.index("P2") < due.index("P3")
    assert "overdue-row" in due and "overdue by 30 min" in due
    assert "scheduled service" not in due  # done orders are not due


def test_asset_page(client: TestClient) -> None:
    r = client.get("/assets/pump-01")
    assert r.status_code == 200
    html = r.text
    assert "1,480 rpm" in html and "9 balls" in html and "group 2, rigid" in html
    assert "key" in html  # customer tier
    # Five trend charts; velocity shows its zone (B) and the next one up (C), not D.
    assert html.count('class="chart trend"') == 5
    for zone in "ABC":
        assert f'data-zone="{zone}"' in html
    assert 'data-zone="D"' not in html
    assert html.count('class="marker onset alarm"') == 5  # alert onset on every trend
    assert html.count('class="marker onset warning"') == 5  # and the earlier one
    points = [int(p) for p in re.findall(r'data-points="(\d+)"', html)]
    assert max(points) >= 150
    # Spectra from the snapshot with shaft and defect markers.
    assert html.count('class="chart spectrum"') == 2
    for label in ("1×", "2×", "3×", "BPFO", "BPFI", "BSF", "FTF", "2×BPFO"):
        assert f'data-label="{label}"' in html
    # Evidence and RUL.
    assert "env_bpfo_ms2" in html and "9.4" in html and "FleetBaseline+diagnosis" in html
    assert "0.1.0" in html and "88.6" in html and "11.3" in html
    assert "5 of the last 6 windows over threshold" in html
    assert "bearing outer race, confidence 86 %" in html and "ISO 14224 VIB 2.6" in html
    assert 'data-median-h="120.0"' in html
    # The resolved imbalance alert of this period is listed with a link.
    assert "Earlier alerts in this period" in html and "#2 imbalance" in html
    # Local viewers read only: no request button, a sign-in hint instead.
    assert "Request a new snapshot" not in html and "sign in" in html


def test_asset_without_snapshot_or_data(client: TestClient) -> None:
    html = client.get("/assets/motor-03").text
    assert "No waveform snapshot has been received" in html
    assert "no data in this period" in html
    assert "geometry unknown" in html


def test_trend_window_is_clamped(client: TestClient) -> None:
    assert client.get("/assets/pump-01?hours=0").status_code == 200
    html = client.get("/assets/pump-01?hours=1").text
    assert 'href="?hours=1" aria-current="true"' in html
    week = client.get("/assets/pump-01?hours=168").text
    assert "show a sample of the readings" in week
    assert week.count('class="chart trend"') == 5 and "no data in this period" not in week


def test_unknown_pages_are_html_404(client: TestClient) -> None:
    for path, text in (
        ("/assets/nope", "There is no asset &#39;nope&#39;"),
        ("/alerts/999", "#999"),
    ):
        r = client.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert text in r.text and 'href="/"' in r.text


def test_failed_command_is_reported(fleet: Fleet) -> None:
    def broken(asset_id: str, point: str | None, actor: str) -> str:
        raise RuntimeError("no broker connection for commands")

    app = FastAPI()
    mount_dashboard(
        app,
        make_context(
            fleet.settings,
            fleet.session_factory,
            telemetry_store=fleet.store,
            request_snapshot=broken,
        ),
    )
    c = DashboardClient(app, client=LOCAL)
    c.post("/login", data={"token": fleet.engineer_token}, follow_redirects=False)
    r = c.post("/assets/pump-01/snapshot", follow_redirects=False)
    assert r.status_code == 503 and "no broker connection" in r.text


def test_work_order_board(client: TestClient, fleet: Fleet) -> None:
    html = client.get("/work-orders").text
    columns = re.split(r'<section class="column"', html)[1:]
    assert len(columns) == 4
    open_col, assigned, in_progress, done = columns
    assert "Open" in open_col and "prio prio-p1" in open_col and "OVERDUE" in open_col
    assert "Cooling pump 1" in open_col and "bearing outer race" in open_col
    assert "Check lubrication" in open_col and "SKF 6205-2RS" in open_col
    assert "j.doe" in assigned and "planned" in assigned
    assert "a.lee" in in_progress
    assert "scheduled service" in done and "OVERDUE" not in done


def test_board_drops_old_done_orders(fleet: Fleet) -> None:
    from cloud.dashboard._views import work_order_board

    with fleet.session_factory() as s:
        board = work_order_board(s, fleet.now + timedelta(days=8))
    assert board["done"] == []
    assert [c.priority for c in board["open"]] == ["P1"]


def test_alert_page(client: TestClient, fleet: Fleet) -> None:
    html = client.get(f"/alerts/{fleet.alert_id}").text
    assert "bearing outer race" in html and "sev sev-alarm" in html
    assert "opened" in html and "escalated" in html and "from warning to alarm" in html
    assert "WO-1" in html and 'href="/assets/pump-01"' in html
    assert "kurtosis" in html and "2× bearing outer race" in html
    assert 'data-low-h="40.0"' in html


def test_stylesheet_and_no_external_resources(client: TestClient, fleet: Fleet) -> None:
    css = client.get("/_dashboard/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for path in ("/", "/assets/pump-01", "/work-orders", f"/alerts/{fleet.alert_id}", "/login"):
        html = client.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path
        # One script, the dashboard's own file (it reports the browser's time zone); none inline.
        assert re.findall(r"<script[^>]*>", html) == ['<script src="/_dashboard/tz.js" defer>']
        assert '<script src="/_dashboard/tz.js" defer></script>' in html


def test_pages_are_not_in_openapi(fleet: Fleet) -> None:
    app = make_app(fleet)
    assert app.openapi()["paths"] == {}


def test_remote_browser_must_sign_in(fleet: Fleet) -> None:
    remote = DashboardClient(make_app(fleet), client=("10.1.2.3", 50000))
    r = remote.get("/assets/pump-01", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/assets/pump-01"
    assert remote.get("/login").status_code == 200


def test_login_sets_httponly_cookie_and_opens_pages(fleet: Fleet) -> None:
    c = DashboardClient(make_app(fleet), client=("10.1.2.3", 50000))
    r = c.post(
        "/login",
        data={"token": fleet.engineer_token, "next": "/work-orders"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/work-orders"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    page = c.get("/")
    assert page.status_code == 200 and "token:eng-1" in page.text and "engineer" in page.text
    c.post("/logout", follow_redirects=False)
    c.cookies.clear()
    assert c.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("which", ["gateway", "bogus"])
def test_login_refuses_gateway_and_unknown_tokens(fleet: Fleet, which: str) -> None:
    token = fleet.gateway_token if which == "gateway" else "iw_not-a-real-token-at-all"
    c = DashboardClient(make_app(fleet), client=("10.1.2.3", 50000))
    r = c.post("/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 401 and "Unknown, expired or revoked token" in r.text
    assert COOKIE_NAME not in r.headers.get("set-cookie", "")


def test_login_never_redirects_off_site(fleet: Fleet) -> None:
    c = DashboardClient(make_app(fleet), client=LOCAL)
    for target in ("//evil.example/", "https://evil.example/"):
        r = c.post("/login", data={"token": ADMIN_TOKEN, "next": target}, follow_redirects=False)
        assert r.headers["location"] == "/"


def test_snapshot_request_needs_engineer(fleet: Fleet) -> None:
    local = DashboardClient(make_app(fleet), client=LOCAL)
    assert local.post("/assets/pump-01/snapshot").status_code == 403
    desk = signed_in(fleet, fleet.desk_token)
    assert desk.post("/assets/pump-01/snapshot").status_code == 403
    assert fleet.requested == []
    eng = signed_in(fleet, fleet.engineer_token)
    page = eng.get("/assets/fan-02").text
    assert "Request a new snapshot" in page
    r = eng.post("/assets/fan-02/snapshot", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/assets/fan-02?snapshot=cmd-1"
    assert fleet.requested == [("fan-02", None, "token:eng-1")]
    assert "Snapshot requested (command cmd-1)" in eng.get(r.headers["location"]).text
    assert eng.post("/assets/nope/snapshot").status_code == 404


def test_without_command_channel_the_page_explains(fleet: Fleet) -> None:
    admin = signed_in(fleet, ADMIN_TOKEN, with_snapshot=False)
    html = admin.get("/assets/fan-02").text
    assert "no command channel" in html and "Request a new snapshot" not in html
    assert admin.post("/assets/fan-02/snapshot").status_code == 503


class BrokenStore:
    """A telemetry store whose backend is down."""

    def query(self, **_: object) -> FeatureFrame:
        raise StoreUnavailableError("influx is down")

    def count(self, *, gateway_id: str | None = None, asset_id: str | None = None) -> int:
        raise StoreUnavailableError("influx is down")

    def latest_snapshot(self, asset_id: str, point: str | None = None) -> WaveformSnapshot | None:
        raise StoreUnavailableError("influx is down")


def test_pages_render_when_the_store_is_down(fleet: Fleet) -> None:
    app = FastAPI()
    store: TelemetryReader = BrokenStore()
    mount_dashboard(app, make_context(fleet.settings, fleet.session_factory, telemetry_store=store))
    c = TestClient(app, client=LOCAL)
    assert c.get("/").status_code == 200
    html = c.get("/assets/pump-01").text
    assert "telemetry store unavailable" in html
    assert "No waveform snapshot" in html


def _ids(frame: FeatureFrame) -> Sequence[str]:
    return sorted(set(frame.asset_ids.tolist()))


def test_seeded_store_is_real(fleet: Fleet) -> None:
    frame = fleet.store.query(features=["velocity_rms_mms"])
    assert _ids(frame) == ["fan-02", "pump-01"]
    assert fleet.store.latest_snapshot("pump-01") is not None


def test_mounted_by_the_cloud_app(tmp_path: Path) -> None:
    from cloud.app import create_app
    from cloud.settings import CloudSettings

    app = create_app(CloudSettings(data_dir=tmp_path), ingest=False, scoring=False)
    with TestClient(app, client=LOCAL) as c:
        page = c.get("/")
        assert page.status_code == 200 and "Fleet overview" in page.text
        assert c.get("/_dashboard/dashboard.css").status_code == 200
        assert c.get("/work-orders").status_code == 200
        assert c.get("/api/v1/health").status_code == 200
    assert not any(
        p.startswith(("/assets", "/work-orders", "/login")) for p in app.openapi()["paths"]
    )


def test_ingestion_page_shows_gateway_events_and_dead_letters(
    fleet: Fleet, client: TestClient
) -> None:
    from cloud.domain.deadletters import DbDeadLetterStore
    from cloud.domain.gateways import note_epoch
    from cloud.ingest import DeadLetter

    assert "No dead letters." in client.get("/ingestion").text
    with fleet.session_factory() as session:
        for epoch in ("aaaaaaaa", "bbbbbbbb"):
            note_epoch(session, gateway_id="gw-hall-a", epoch=epoch, first_seq=0, now=fleet.now)
        session.commit()
    DbDeadLetterStore(fleet.session_factory).put_many([
        DeadLetter.make("ironwatch/v1/gw-hall-a/telemetry", b'{"seq": 7, "<script>": 1}',
                        "conflict", "seq 7 is stored already with other content",
                        max_payload_bytes=2048, gateway_id="gw-hall-a", seq=7),
        DeadLetter.make("ironwatch/v1/gw-x/telemetry", b"garbage", "unknown_gateway",
                        "gateway 'gw-x' is not registered", max_payload_bytes=2048,
                        gateway_id="gw-x"),
    ])
    html = client.get("/ingestion").text
    assert "new_epoch" in html and "epoch bbbbbbbb" in html
    assert "seq 7 is stored already with other content" in html
    assert "&lt;script&gt;" in html and "<script>" not in html  # payloads are escaped
    filtered = client.get("/ingestion?reason=unknown_gateway").text
    assert "gw-x" in filtered and "stored already" not in filtered


def test_asset_page_says_when_scoring_fails_for_it(fleet: Fleet) -> None:
    health = ScoringHealth(2.0)
    since = fleet.now - timedelta(minutes=5)
    health.scored("pump-01", since - timedelta(seconds=2))
    for k in range(4):
        health.failed("pump-01", "diagnosis", IndexError("index 793 is out of bounds"),
                      since + timedelta(seconds=2 * k))
    with TestClient(make_app(fleet, scoring=health), client=LOCAL) as c:
        failing = c.get("/assets/pump-01").text
        healthy = c.get("/assets/motor-03").text
    assert "Scoring failed:" in failing
    assert "diagnosis: IndexError: index 793 is out of bounds" in failing
    assert f"since {since:%Y-%m-%d %H:%M} UTC" in failing and "4 rounds skipped" in failing
    assert "Scoring failed" not in healthy


def test_work_order_cards_are_link_targets(client: TestClient, fleet: Fleet) -> None:
    # Escalation e-mails link to /work-orders#wo-<id>: each card carries that id.
    html = client.get("/work-orders").text
    ids = re.findall(r'<article id="wo-(\d+)" class="card wo', html)
    assert ids and len(ids) == len(set(ids))
