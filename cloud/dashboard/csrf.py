"""CSRF protection of every state-changing dashboard request, as an ASGI middleware.

A POST (PUT, PATCH, DELETE) outside the API must
1. come from a page of this site: its `Origin` (or, without one, its `Referer`) names the
   host the request was sent to; a browser always sends `Origin` with a form post;
2. carry the form field `csrf_token` equal to the token derived from one of the browser's
   own cookies (`cloud.dashboard.sessions.csrf_token_for`): the session's, or before
   sign-in the `ironwatch_csrf` cookie this middleware sets.
Otherwise the answer is 403 and the handler never runs. SameSite=Strict cookies stay as a
third guard. The API (`/api/`) authenticates with bearer headers, which a browser never
adds by itself, so it is not checked here.

Every page gets its token as `request.state.csrf_token`; a form adds it as a hidden field
with `{{ csrf_field(request) }}` (a template global).
Handlers on the dashboard router check that this middleware ran (`require_csrf_checked`),
so a dashboard mounted without it refuses writes instead of running unprotected.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, HTTPException, Request
from markupsafe import Markup
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.api.security import install_security_headers, is_middleware
from cloud.dashboard.sessions import CSRF_COOKIE, SESSION_COOKIE, csrf_token_for

__all__ = [
    "CSRF_FIELD",
    "MAX_FORM_BYTES",
    "CsrfProtection",
    "csrf_field",
    "install_csrf_protection",
    "require_csrf_checked",
]

log = logging.getLogger(__name__)

CSRF_FIELD = "csrf_token"
# Dashboard forms are a few short fields; a larger body is not one of ours.
MAX_FORM_BYTES = 64 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_CHECKED = "csrf_checked"


def _cookies(headers: Headers) -> dict[str, str]:
    # Starlette's own parser: the same cookies the handlers see as `request.cookies`.
    return cookie_parser(headers.get("cookie", ""))


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return parts.netloc.lower()


def _same_origin(headers: Headers) -> tuple[bool, str]:
    """Whether the request came from a page of the host it was sent to, and why not.

    The host is the `Host` header, or the `X-Forwarded-Host` a reverse proxy sets when it
    rewrites `Host`. A cross-site form cannot set either header, so trusting the forwarded
    one gives an attacker nothing."""
    hosts = {
        value.strip().lower()
        for value in (headers.get("host"), *headers.get("x-forwarded-host", "").split(","))
        if value and value.strip()
    }
    origin = headers.get("origin")
    if origin is not None:
        if origin == "null" or _origin_of(origin) not in hosts:
            return False, f"Origin {origin!r} is not this site ({', '.join(sorted(hosts))})"
        return True, ""
    referer = headers.get("referer")
    if referer is not None and _origin_of(referer) not in hosts:
        return False, "Referer of another site"
    # Neither header: not a browser form (browsers send Origin with every POST); the token
    # below still has to match a cookie of the caller.
    return True, ""


def _expected_tokens(cookies: dict[str, str]) -> Iterable[str]:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        if secret := cookies.get(name):
            yield csrf_token_for(secret)


class CsrfProtection:
    """Refuse cross-site and token-less writes to the dashboard; give pages their token."""

    def __init__(self, app: ASGIApp, *, api_prefix: str = "/api/") -> None:
        self.app = app
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.api_prefix):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = _cookies(headers)
        new_cookie: str | None = None
        secret = cookies.get(SESSION_COOKIE) or cookies.get(CSRF_COOKIE)
        if secret is None:
            new_cookie = secret = secrets.token_urlsafe(32)
        state = scope.setdefault("state", {})
        state["csrf_token"] = csrf_token_for(secret)

        if scope["method"] not in SAFE_METHODS:
            ok, why, receive = await self._check(scope, receive, headers, cookies)
            if not ok:
                log.warning("refused %s %s: %s", scope["method"], scope["path"], why)
                response = PlainTextResponse(
                    f"Refused: {why}. Reload the page and send the form again.", status_code=403
                )
                await response(scope, receive, send)
                return
            state[_CHECKED] = True

        if new_cookie is None:
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{CSRF_COOKIE}={new_cookie}; Path=/; HttpOnly; SameSite=Strict" + (
                    "; Secure" if https else ""
                )
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _check(
        self, scope: Scope, receive: Receive, headers: Headers, cookies: dict[str, str]
    ) -> tuple[bool, str, Receive]:
        ok, why = _same_origin(headers)
        if not ok:
            return False, why, receive
        body, complete = await _read_body(receive)
        if not complete:
            return False, "the form is too large", receive
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        sent = ""
        if content_type == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=50)
            sent = (fields.get(CSRF_FIELD) or [""])[0]
        if not sent or not any(
            hmac.compare_digest(sent, expected) for expected in _expected_tokens(cookies)
        ):
            return False, "the form's CSRF token is missing or wrong", receive
        return True, "", _replay(body, receive)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read for the check, then the client's own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def require_csrf_checked(request: Request) -> None:
    """Dependency of the dashboard router: a write that did not pass `CsrfProtection`
    (the app was built without it) is refused rather than run unprotected."""
    if request.method not in SAFE_METHODS and not getattr(request.state, _CHECKED, False):
        raise HTTPException(403, "CSRF protection is not installed on this app")


def csrf_field(request: Request) -> Markup:
    """The hidden form field carrying the page's CSRF token (a template global)."""
    token = getattr(request.state, "csrf_token", "")
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


def install_csrf_protection(app: FastAPI) -> None:
    """Add `CsrfProtection` to `app` once, inside the security headers."""
    if not any(is_middleware(m, CsrfProtection) for m in app.user_middleware):
        app.add_middleware(CsrfProtection)
    install_security_headers(app)
