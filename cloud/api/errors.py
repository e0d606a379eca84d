"""One error model for every 4xx/5xx: `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import functools
import logging
import re
import types
import typing
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud.domain.errors import (
    ConflictError,
    DomainError,
    InvalidInputError,
    NotFoundError,
)

__all__ = [
    "ERROR_RESPONSES",
    "ErrorBody",
    "ErrorResponse",
    "api_error",
    "install_error_handlers",
    "reject_unknown_query_params",
]

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """What went wrong: a stable machine code, a sentence for people, and specifics."""

    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["work order 42 not found"])
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


# Documented on every route so clients (and schemathesis) know the error shapes.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc("The body could not be read (not UTF-8 / not JSON)"),
    401: _doc("Missing or invalid bearer token"),
    403: _doc("The token's role may not do this"),
    404: _doc("Not found"),
    409: _doc("Conflicts with the current state"),
    422: _doc("Invalid input"),
}

_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def _body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def api_error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HTTPException:
    """An HTTPException whose body follows the error model."""
    return HTTPException(
        status_code=status,
        detail={
            "code": code or _CODES.get(status, "error"),
            "message": message,
            "details": details,
        },
        headers=headers,
    )


def _domain_status(err: DomainError) -> int:
    if isinstance(err, NotFoundError):
        return 404
    if isinstance(err, ConflictError):
        return 409
    if isinstance(err, InvalidInputError):
        return 422
    return 400


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return JSONResponse(
        _body(exc.code, exc.message, jsonable_encoder(exc.details)),
        status_code=_domain_status(exc),
    )


@functools.lru_cache(maxsize=512)
def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$"
    )


def _operations(request: Request) -> dict[str, Any]:
    """The OpenAPI operations (by lower-case method) whose path template matches the request."""
    path = request.url.path
    found: dict[str, Any] = {}
    for template, operations in request.app.openapi().get("paths", {}).items():
        if _template_regex(template).match(path):
            found.update(operations)
    return found


def _declared_query(route: APIRoute) -> set[str] | None:
    """The plain query parameters the route declares, or None if it takes a query model
    (which refuses unknown parameters itself)."""
    names: set[str] = set()
    pending = [route.dependant]
    while pending:  # a handful of dependants, walked only for requests with a query string
        dependant = pending.pop()
        for field in dependant.query_params:
            annotation = field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                return None
            names.add(field.alias)
        pending.extend(dependant.dependencies)
    return names


def _takes_many(annotation: Any) -> bool:
    """Whether a query field's type holds several values (a list, possibly optional)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(_takes_many(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _takes_many(typing.get_args(annotation)[0])
    return isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str


def _single_valued(route: APIRoute) -> frozenset[str]:
    """The query parameters of a route (plain or in its query model) that take one value;
    walked only for a request that repeats a parameter."""
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        for field in dependant.query_params:
            annotation = field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names.update(
                    info.alias or name
                    for name, info in annotation.model_fields.items()
                    if not _takes_many(info.annotation)
                )
            elif not _takes_many(annotation):
                names.add(field.alias)
        pending.extend(dependant.dependencies)
    return frozenset(names)


def reject_unknown_query_params(request: Request) -> None:
    """422 for query parameters the operation does not take: `?sate=open` is a typo, and
    silently ignoring it would return everything. Also 422 for a parameter that takes one
    value given more than once (`?state=open&state=done` would otherwise mean `done`).

    Operations take their query string as one model with `extra="forbid"`
    (`cloud.api.schemas.queries`), which refuses unknown names itself; this covers
    operations without one, so `GET /alerts/7?verbose=1` is an error too."""
    route = request.scope.get("route")
    if not request.query_params or not isinstance(route, APIRoute):
        return
    # A parameter that takes one value, given twice, would silently mean the last one.
    repeated = sorted(
        name
        for name in set(request.query_params)
        if len(request.query_params.getlist(name)) > 1 and name in _single_valued(route)
    )
    if repeated:
        raise api_error(
            422,
            f"query parameter(s) given more than once but taking one value: "
            f"{', '.join(repeated)}",
            code="validation_error",
            details={"repeated": repeated},
        )
    declared = _declared_query(route)
    if declared is None:
        return
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        raise api_error(
            422,
            f"unknown query parameter(s): {', '.join(unknown)}",
            code="validation_error",
            details={"unknown": unknown, "allowed": sorted(declared)},
        )


def _allowed_methods(request: Request) -> str | None:
    # Starlette answers 405 with the methods of the first route matching the path only;
    # FastAPI makes one route per method, so the OpenAPI paths give the truthful Allow.
    methods = {m.upper() for m in _operations(request) if m.upper() in _HTTP_METHODS}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods)) or None


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allow := _allowed_methods(request)) is not None:
        headers["Allow"] = allow
    detail = exc.detail
    if isinstance(detail, dict) and "message" in detail:
        body = _body(
            str(detail.get("code") or _CODES.get(exc.status_code, "error")),
            str(detail["message"]),
            detail.get("details"),
        )
    else:
        phrase = HTTPStatus(exc.status_code).phrase
        body = _body(_CODES.get(exc.status_code, "error"), str(detail or phrase))
    return JSONResponse(body, status_code=exc.status_code, headers=headers or None)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in exc.errors()
    ]
    return JSONResponse(
        _body("validation_error", "the request is not valid", {"errors": errors}),
        status_code=422,
    )


async def _on_integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A unique index caught a race the domain check could not see (two writers at once).
    log.info("integrity error on %s: %s", request.url.path, exc)
    return JSONResponse(
        _body("conflict", "the change conflicts with data written concurrently"), status_code=409
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(_body("internal_error", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error response follow the error model."""
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    app.add_exception_handler(Exception, _on_unexpected)
