"""How the cloud's metrics leave the process: `GET /metrics` on the service, an exporter port
for processes without HTTP, and request latency for every route of the service.

`/metrics` on the service: with `metrics_token` set, only `Authorization: Bearer <token>`
reads it (from anywhere); without one, only clients on the loopback interface do (a
Prometheus on the same host). The exporter port (`metrics_port`) has no authentication:
bind it (`metrics_host`, default 127.0.0.1) where only Prometheus reaches it.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from wsgiref.simple_server import WSGIServer

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.metrics._series import HTTP_REQUEST_DURATION
from cloud.settings import CloudSettings

__all__ = [
    "MetricsExporter",
    "RequestMetrics",
    "install_request_metrics",
    "metrics_router",
    "route_template",
]

log = logging.getLogger(__name__)

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
UNMATCHED = "<unmatched>"


class RequestMetrics:
    """Pure ASGI middleware: each HTTP request's duration by method, route template and
    status class. The route is the template (`/api/v1/assets/{asset_id}`), never the path,
    so ids never become labels; a request no route matched is `<unmatched>`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            HTTP_REQUEST_DURATION.labels(
                scope.get("method", "GET"), route_template(scope), f"{status[0] // 100}xx"
            ).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route's full path template, or `<unmatched>`.

    FastAPI keeps included routers whole, so `scope["route"].path` is relative to its
    router (`/assets/{asset_id}`); the full template is on FastAPI's effective route
    context. Read defensively: without it the relative template still bounds the label.
    """
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


def install_request_metrics(app: FastAPI) -> None:
    """Time every request of `app` (outermost, so error answers are timed too)."""
    app.add_middleware(RequestMetrics)


def metrics_router(settings: CloudSettings) -> APIRouter:
    """`GET /metrics` in Prometheus's text format, behind the token or the loopback rule."""
    router = APIRouter()
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None

    # Imported here: cloud.api imports the ingestion side, which imports these metrics;
    # at module level that cycle breaks a process whose first import is the database side.
    from cloud.api.errors import api_error

    @router.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), token.encode()
            ):
                raise api_error(401, "metrics need the metrics token (metrics_token)",
                                headers={"WWW-Authenticate": "Bearer"})
        elif request.client is None or request.client.host not in _LOOPBACK:
            raise api_error(403, "metrics are served to the loopback interface only; "
                                 "set metrics_token to scrape from another host")
        # The format Prometheus asks for (OpenMetrics or the classic text format).
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(REGISTRY), headers={"Content-Type": content_type})

    return router


class MetricsExporter:
    """prometheus_client's HTTP exporter on its own port; `stop()` frees the port."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self._server: WSGIServer | None
        self._thread: threading.Thread | None
        self._server, self._thread = start_http_server(port, addr=host)
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
