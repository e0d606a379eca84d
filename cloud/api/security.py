"""Security headers on every HTTP response of the service: API answers and dashboard pages.

A pure ASGI middleware, so it covers every route of the app, whoever adds it: the pages
load nothing but their own stylesheet and one script file of their own, so the policy
allows scripts only from the service itself and never inline, and no page may be framed
by another site (clickjacking). A response that sets its own policy keeps it (the API
documentation pages, see `cloud.dashboard.apidocs`).
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "SecurityHeaders",
    "install_security_headers",
    "is_middleware",
]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        # The dashboard's one script file (it reports the browser's time zone); never inline.
        "script-src 'self'",
        "style-src 'self'",
        # data: for images a page builds from its own content (none today; harmless).
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin: our own form posts keep Origin and Referer (the CSRF check reads them);
    # other sites learn nothing of the dashboard's URLs.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# Pages and API answers hold fleet data and may be behind a sign-in: never cached. A
# response that sets its own Cache-Control (the stylesheet) keeps it.
NO_STORE = "no-store"
HSTS = "max-age=31536000"


class SecurityHeaders:
    """Add `SECURITY_HEADERS` (and `Cache-Control: no-store` unless set) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    # A page that needs a policy of its own (the API docs) has set it.
                    if name == "Content-Security-Policy" and name in headers:
                        continue
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = NO_STORE
                if https:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security_headers(app: FastAPI) -> None:
    """Make `SecurityHeaders` the outermost middleware of `app`, once however often called,
    so the headers also go on answers that inner middleware (the CSRF check) gives itself."""
    app.user_middleware[:] = [
        m for m in app.user_middleware if not is_middleware(m, SecurityHeaders)
    ]
    app.add_middleware(SecurityHeaders)


def is_middleware(entry: Middleware, cls: type) -> bool:
    """Whether an entry of `app.user_middleware` adds `cls`."""
    factory: object = entry.cls
    return factory is cls
