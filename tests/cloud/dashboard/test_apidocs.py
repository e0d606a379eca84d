"""The API's documentation pages: served locally, under their own content security policy,
to whoever may read the dashboard."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from cloud.api import api_router, install_error_handlers
from cloud.api.security import SECURITY_HEADERS
from cloud.dashboard.apidocs import REDOC_CSP, SWAGGER_CSP, VENDOR_FILES

from .conftest import LOCAL, Fleet, make_app

REMOTE = ("10.1.2.3", 50000)


def app_with_api(fleet: Fleet) -> TestClient:
    app = make_app(fleet)
    install_error_handlers(app)
    app.include_router(api_router())
    return TestClient(app, client=LOCAL)


def test_docs_pages_load_only_local_files(fleet: Fleet) -> None:
    c = app_with_api(fleet)
    for path, csp, files in (
        ("/docs", SWAGGER_CSP, ("swagger-ui-bundle.js", "swagger-init.js", "swagger-ui.css")),
        ("/redoc", REDOC_CSP, ("redoc.standalone.js", "redoc-init.js")),
    ):
        r = c.get(path)
        assert r.status_code == 200
        assert r.headers["Content-Security-Policy"] == csp
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert not re.search(r'(src|href)="(https?:)?//', r.text), path
        # Scripts are files only, never inline.
        scripts = re.findall(r"<script[^>]*>([^<]*)</script>", r.text)
        assert len(scripts) == sum(name.endswith(".js") for name in files)
        assert all(body == "" for body in scripts)
        for name in files:
            assert f'/_dashboard/docs/{name}"' in r.text
            asset = c.get(f"/_dashboard/docs/{name}")
            assert asset.status_code == 200 and len(asset.content) > 200, name
    # Swagger UI keeps the strict style policy; only ReDoc needs inline styles.
    assert "'unsafe-inline'" not in SWAGGER_CSP and "'unsafe-inline'" in REDOC_CSP
    assert c.get("/_dashboard/docs/../../settings.py").status_code == 404
    assert c.get("/_dashboard/docs/nothing.js").status_code == 404
    # Every other page keeps the service's policy.
    assert c.get("/").headers["Content-Security-Policy"] == SECURITY_HEADERS[
        "Content-Security-Policy"
    ]
    assert set(VENDOR_FILES) >= {"swagger-ui-bundle.js", "redoc.standalone.js"}


def test_the_document_is_served_to_dashboard_viewers(fleet: Fleet) -> None:
    c = app_with_api(fleet)
    doc = c.get("/_dashboard/openapi.json").json()
    assert "/api/v1/alerts" in doc["paths"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]  # the Authorize dialog
    # The API's own copy still needs a token.
    assert c.get("/api/v1/openapi.json").status_code == 401
    remote = TestClient(c.app, client=REMOTE)
    for path in ("/docs", "/redoc", "/_dashboard/openapi.json"):
        r = remote.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
