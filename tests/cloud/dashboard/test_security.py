"""Dashboard hardening in-process: security headers, CSRF checks, server-side sessions."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from cloud.api import make_context
from cloud.api.deps import publish_context
from cloud.api.security import SECURITY_HEADERS
from cloud.dashboard import dashboard_router
from cloud.dashboard.csrf import CSRF_FIELD
from cloud.dashboard.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    csrf_token_for,
)
from cloud.db.models import ApiToken, DashboardSession
from cloud.domain.tokens import hash_token, revoke_token

from .conftest import ADMIN_TOKEN, LOCAL, DashboardClient, Fleet, TestClient, make_app

REMOTE = ("10.1.2.3", 50000)


def signed_in(fleet: Fleet, token: str, client: tuple[str, int] = REMOTE) -> DashboardClient:
    c = DashboardClient(make_app(fleet), client=client)
    r = c.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def test_pages_have_the_security_headers(client: TestClient, fleet: Fleet) -> None:
    for path in (
        "/",
        "/assets/pump-01",
        "/work-orders",
        f"/alerts/{fleet.alert_id}",
        "/ingestion",
        "/login",
    ):
        r = client.get(path)
        assert r.status_code == 200
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value, (path, name)
        assert r.headers["Cache-Control"] == "no-store"
        # The policy holds because the pages need nothing it forbids.
        # Only the dashboard's own script file, nothing inline (the policy forbids it).
        scripts = re.findall(r"<script[^>]*>(.*?)</script>", r.text, re.S)
        assert scripts == [""] and 'src="/_dashboard/tz.js"' in r.text
        assert " style=" not in r.text and "<style" not in r.text
    css = client.get("/_dashboard/dashboard.css")
    assert css.headers["Cache-Control"] == "max-age=300"
    assert css.headers["X-Content-Type-Options"] == "nosniff"


def test_every_form_carries_the_token(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.engineer_token)
    token = csrf_token_for(c.cookies[SESSION_COOKIE])
    html = c.get("/assets/fan-02").text
    # The snapshot form, the sign-out form and the language switch.
    assert html.count(f'<input type="hidden" name="csrf_token" value="{token}">') == 3
    assert html.count("<form") == 3
    login = DashboardClient(make_app(fleet), client=REMOTE).get("/login")
    pre = login.cookies[CSRF_COOKIE]
    assert f'name="csrf_token" value="{csrf_token_for(pre)}"' in login.text
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()


@pytest.mark.parametrize(
    ("form", "headers"),
    [
        ({}, {}),  # no token
        ({CSRF_FIELD: "0" * 64}, {}),  # a guessed token
        ({CSRF_FIELD: "right"}, {"Origin": "http://evil.example"}),
        ({CSRF_FIELD: "right"}, {"Origin": "http://testserver:8081"}),  # another port
        ({CSRF_FIELD: "right"}, {"Origin": "null"}),
        ({CSRF_FIELD: "right"}, {"Referer": "http://evil.example/page"}),
    ],
)
def test_a_write_without_a_valid_token_and_origin_is_refused(
    fleet: Fleet, form: dict[str, str], headers: dict[str, str]
) -> None:
    c = signed_in(fleet, fleet.engineer_token)
    token = csrf_token_for(c.cookies[SESSION_COOKIE])
    data = {k: (token if v == "right" else v) for k, v in form.items()}
    # TestClient.post, not the DashboardClient's: send exactly this form.
    r = TestClient.post(c, "/assets/fan-02/snapshot", data=data, headers=headers)
    assert r.status_code == 403
    assert "Refused" in r.text
    assert r.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert fleet.requested == []
    # The same session with the right token from its own origin goes through.
    ok = TestClient.post(
        c,
        "/assets/fan-02/snapshot",
        data={CSRF_FIELD: token},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and fleet.requested == [("fan-02", None, "token:eng-1")]


def test_another_browsers_token_does_not_fit(fleet: Fleet) -> None:
    victim = signed_in(fleet, fleet.engineer_token)
    attacker = signed_in(fleet, fleet.desk_token)
    theirs = csrf_token_for(attacker.cookies[SESSION_COOKIE])
    r = TestClient.post(victim, "/assets/fan-02/snapshot", data={CSRF_FIELD: theirs})
    assert r.status_code == 403 and fleet.requested == []


def test_sign_in_itself_needs_the_token(fleet: Fleet) -> None:
    c = DashboardClient(make_app(fleet), client=REMOTE)
    c.get("/login")
    r = TestClient.post(c, "/login", data={"token": fleet.engineer_token}, follow_redirects=False)
    assert r.status_code == 403 and SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_writes_are_refused_when_the_app_lacks_the_middleware(fleet: Fleet) -> None:
    app = FastAPI()
    publish_context(
        app, make_context(fleet.settings, fleet.session_factory, telemetry_store=fleet.store)
    )
    app.include_router(dashboard_router())
    c = TestClient(app, client=REMOTE)
    r = c.post("/login", data={"token": fleet.engineer_token}, follow_redirects=False)
    assert r.status_code == 403 and SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_oversized_or_non_form_bodies_are_refused(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.engineer_token)
    token = csrf_token_for(c.cookies[SESSION_COOKIE])
    big = TestClient.post(c, "/logout", data={CSRF_FIELD: token, "pad": "x" * 70_000})
    assert big.status_code == 403
    as_json = TestClient.post(c, "/logout", json={CSRF_FIELD: token})
    assert as_json.status_code == 403
    assert c.get("/", follow_redirects=False).status_code == 200  # still signed in


def test_the_session_cookie_is_not_the_api_token(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.engineer_token)
    secret = c.cookies[SESSION_COOKIE]
    assert secret != fleet.engineer_token and fleet.engineer_token not in secret
    with fleet.session_factory() as db:
        rows = db.scalars(select(DashboardSession)).all()
        assert len(rows) == 1
        row = rows[0]
        # Only a digest of the secret is stored; the API token is referenced, not copied.
        assert row.id == hash_token(secret) and secret not in row.id
        assert (row.name, row.role) == ("token:eng-1", "engineer")
        token_row = db.get(ApiToken, row.token_id)
        assert token_row is not None and token_row.name == "eng-1"
        assert row.expires_at - row.created_at == SESSION_LIFETIME
    # The API token in the session cookie does not sign anyone in.
    other = DashboardClient(make_app(fleet), client=REMOTE)
    other.cookies.set(SESSION_COOKIE, fleet.engineer_token)
    assert other.get("/", follow_redirects=False).status_code == 303


def test_sign_out_revokes_the_session_on_the_server(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.engineer_token)
    secret = c.cookies[SESSION_COOKIE]
    assert c.get("/", follow_redirects=False).status_code == 200
    r = c.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    with fleet.session_factory() as db:
        row = db.get(DashboardSession, hash_token(secret))
        assert row is not None and row.revoked_at is not None
    # A copy of the old cookie, kept by someone else, is worthless now.
    replay = DashboardClient(make_app(fleet), client=REMOTE)
    replay.cookies.set(SESSION_COOKIE, secret)
    assert replay.get("/", follow_redirects=False).status_code == 303
    # Even with the form token that cookie once had: sent to sign in, nothing requested.
    late = TestClient.post(
        replay,
        "/assets/fan-02/snapshot",
        data={CSRF_FIELD: csrf_token_for(secret)},
        follow_redirects=False,
    )
    assert late.status_code == 303 and late.headers["location"].startswith("/login")
    assert fleet.requested == []


def test_revoking_the_api_token_ends_its_sessions(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.engineer_token)
    assert c.get("/", follow_redirects=False).status_code == 200
    with fleet.session_factory() as db:
        token_row = db.scalars(select(ApiToken).where(ApiToken.name == "eng-1")).one()
        revoke_token(db, token_row.id, now=fleet.now)
        db.commit()
    assert c.get("/", follow_redirects=False).status_code == 303


def test_sessions_expire(fleet: Fleet) -> None:
    c = signed_in(fleet, ADMIN_TOKEN)
    assert c.get("/", follow_redirects=False).status_code == 200
    with fleet.session_factory() as db:
        row = db.scalars(select(DashboardSession)).one()
        assert row.token_id is None and row.role == "admin"  # the bootstrap token
        row.expires_at = fleet.now - timedelta(seconds=1)
        db.commit()
    assert c.get("/", follow_redirects=False).status_code == 303


def test_local_read_only_still_works_without_a_session(fleet: Fleet) -> None:
    local = DashboardClient(make_app(fleet), client=LOCAL)
    page = local.get("/", follow_redirects=False)
    assert page.status_code == 200 and "read-only" in page.text
    # Reading needs no sign-in; writing still does, with a valid form token or not.
    assert local.post("/assets/fan-02/snapshot").status_code == 403
    assert fleet.requested == []


def test_the_cloud_app_has_headers_and_csrf(tmp_path: Path) -> None:
    from cloud.app import create_app
    from cloud.settings import CloudSettings

    app = create_app(
        CloudSettings(data_dir=tmp_path, admin_token=SecretStr(ADMIN_TOKEN)),
        ingest=False,
        scoring=False,
    )
    with DashboardClient(app, client=REMOTE) as c:
        for path in ("/login", "/api/v1/health"):
            r = c.get(path)
            assert (
                r.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
            )
            assert r.headers["Cache-Control"] == "no-store"
        assert c.get("/api/v1/openapi.json").status_code == 401
        refused = TestClient.post(c, "/login", data={"token": ADMIN_TOKEN})
        assert refused.status_code == 403
        ok = c.post("/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
        assert ok.status_code == 303 and SESSION_COOKIE in ok.headers["set-cookie"]
        assert "bootstrap-admin" in c.get("/").text
        # The API is not behind the CSRF check: it takes bearer tokens, not cookies.
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        created = TestClient.post(c, "/api/v1/gateways", json={"id": "gw-x"}, headers=headers)
        assert created.status_code == 201, created.text


def test_bad_input_on_pages_is_never_a_server_error(fleet: Fleet) -> None:
    c = DashboardClient(make_app(fleet), client=LOCAL, raise_server_exceptions=False)
    for url in (
        "/alerts/99999999999999999999",
        "/alerts/-1",
        "/alerts/abc",
        "/assets/pump-01?hours=99999999999999999999999",
        "/assets/" + "x" * 5000,
        "/login?next=" + "z" * 10000,
    ):
        r = c.get(url, follow_redirects=False)
        assert r.status_code < 500, (url, r.status_code)
    assert c.get("/alerts/99999999999999999999").status_code == 404


def test_behind_a_proxy_the_forwarded_host_is_this_site(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.engineer_token)
    token = csrf_token_for(c.cookies[SESSION_COOKIE])
    proxied = {"Origin": "https://iw.example.com", "X-Forwarded-Host": "iw.example.com"}
    r = TestClient.post(
        c,
        "/assets/fan-02/snapshot",
        data={CSRF_FIELD: token},
        headers=proxied,
        follow_redirects=False,
    )
    assert r.status_code == 303 and len(fleet.requested) == 1
    elsewhere = {"Origin": "https://evil.example", "X-Forwarded-Host": "iw.example.com"}
    r = TestClient.post(c, "/assets/fan-02/snapshot", data={CSRF_FIELD: token}, headers=elsewhere)
    assert r.status_code == 403 and len(fleet.requested) == 1


def test_signing_in_again_ends_the_previous_session(fleet: Fleet) -> None:
    c = signed_in(fleet, fleet.desk_token)
    first = c.cookies[SESSION_COOKIE]
    r = c.post("/login", data={"token": fleet.engineer_token}, follow_redirects=False)
    assert r.status_code == 303
    assert c.cookies[SESSION_COOKIE] != first
    assert "token:eng-1" in c.get("/").text
    with fleet.session_factory() as db:
        old = db.get(DashboardSession, hash_token(first))
        assert old is not None and old.revoked_at is not None


@pytest.mark.parametrize("api_first", [True, False])
def test_api_and_dashboard_on_one_app_install_each_protection_once(
    fleet: Fleet, api_first: bool
) -> None:
    from cloud.api import mount_api
    from cloud.api.security import SecurityHeaders, is_middleware
    from cloud.dashboard import mount_dashboard
    from cloud.dashboard.csrf import CsrfProtection

    context = make_context(fleet.settings, fleet.session_factory, telemetry_store=fleet.store)
    app = FastAPI()
    for mount in (mount_api, mount_dashboard) if api_first else (mount_dashboard, mount_api):
        mount(app, context)
    stack = [m for m in app.user_middleware]
    assert sum(is_middleware(m, SecurityHeaders) for m in stack) == 1
    assert sum(is_middleware(m, CsrfProtection) for m in stack) == 1
    assert is_middleware(stack[0], SecurityHeaders)  # outermost
    c = TestClient(app, client=REMOTE)
    refused = c.post("/logout", data={CSRF_FIELD: "forged"})
    assert refused.status_code == 403
    assert refused.headers["X-Frame-Options"] == "DENY"
    assert c.get("/api/v1/health").headers["Cache-Control"] == "no-store"
