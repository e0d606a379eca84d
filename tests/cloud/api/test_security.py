"""Security headers on every API answer; the OpenAPI document needs a token, as docs/api.md says."""

from __future__ import annotations

import pytest

from cloud.api.security import SECURITY_HEADERS

from .conftest import Api

V1 = "/api/v1"


@pytest.mark.parametrize(
    ("role", "method", "url", "status"),
    [
        ("engineer", "GET", f"{V1}/alerts", 200),
        (None, "GET", f"{V1}/health", 200),
        (None, "GET", f"{V1}/alerts", 401),
        ("engineer", "GET", f"{V1}/alerts?sate=open", 422),
        ("engineer", "GET", f"{V1}/nowhere", 404),
        ("service_desk", "POST", f"{V1}/tokens", 403),
    ],
)
def test_every_answer_has_the_security_headers(
    api: Api, role: str | None, method: str, url: str, status: int
) -> None:
    response = api.request(role, method, url, json={"name": "x", "role": "engineer"})
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert response.headers["Cache-Control"] == "no-store"
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    # Scripts only from the service's own files (the dashboard's time-zone script), none inline.
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP here


def test_openapi_document_needs_a_token(api: Api) -> None:
    anonymous = api.request(None, "GET", f"{V1}/openapi.json")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert anonymous.json()["error"]["code"] == "unauthorized"
    bad = api.client.get(f"{V1}/openapi.json", headers={"Authorization": "Bearer iw_nope"})
    assert bad.status_code == 401
    for role in ("gateway", "engineer", "service_desk", "admin"):
        document = api.request(role, "GET", f"{V1}/openapi.json")
        assert document.status_code == 200
        assert document.json()["info"]["title"] == "Ironwatch cloud API"
    # The document does not list itself, and nothing else serves it without a token.
    assert f"{V1}/openapi.json" not in document.json()["paths"]
    for path in ("/openapi.json", f"{V1}/docs", "/docs", f"{V1}/redoc"):
        assert api.request(None, "GET", path).status_code in (401, 404), path


def test_health_alone_answers_without_a_token(api: Api) -> None:
    document = api.request("admin", "GET", f"{V1}/openapi.json").json()
    public = []
    for path, operations in document["paths"].items():
        for method in operations:
            url = path.replace("{", "").replace("}", "")
            if api.request(None, method.upper(), url).status_code != 401:
                public.append((method, path))
    assert public == [("get", f"{V1}/health")]


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("DELETE", f"{V1}/alerts", "GET, HEAD"),
        ("PUT", f"{V1}/work-orders/1", "GET, HEAD, PATCH"),
        ("GET", f"{V1}/alerts/1/acknowledge", "POST"),
        ("POST", f"{V1}/tokens/3", "DELETE"),
    ],
)
def test_405_lists_every_method_of_the_path(api: Api, method: str, url: str, allow: str) -> None:
    response = api.request("admin", method, url)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert response.json()["error"]["code"] == "method_not_allowed"
