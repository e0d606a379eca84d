"""Request dependencies: the context, a session per request, the caller and role checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from cloud.api.auth import Principal, resolve_principal
from cloud.api.context import ApiContext
from cloud.api.errors import api_error
from cloud.domain.vocabulary import Role

__all__ = [
    "CONTEXT_STATE_KEY",
    "ContextDep",
    "NowDep",
    "PrincipalDep",
    "SessionDep",
    "get_context",
    "get_principal",
    "get_session",
    "publish_context",
    "require",
    "withdraw_context",
]

_bearer = HTTPBearer(auto_error=False, description="API token: `Authorization: Bearer iw_...`")


# The one place the context lives: `app.state.<CONTEXT_STATE_KEY>`.
CONTEXT_STATE_KEY = "ironwatch_api"


def publish_context(app: FastAPI, context: ApiContext) -> None:
    """Serve `context` to every request of `app` (API and dashboard alike)."""
    setattr(app.state, CONTEXT_STATE_KEY, context)


def withdraw_context(app: FastAPI) -> None:
    """Stop serving: later requests fail as outside the service's lifespan."""
    setattr(app.state, CONTEXT_STATE_KEY, None)


def get_context(request: Request) -> ApiContext:
    """The ApiContext published on the app; an error outside the service's lifespan."""
    context = getattr(request.app.state, CONTEXT_STATE_KEY, None)
    if not isinstance(context, ApiContext):
        raise RuntimeError("the cloud services are not running (outside the app lifespan)")
    return context


ContextDep = Annotated[ApiContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    """A session per request: committed if the handler succeeds, rolled back otherwise."""
    with context.session_factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
    # Deliveries queued by this request are committed now; let the worker know.
    context.webhooks_queued()


# scope="function": commit before the response is sent, so a failed commit is an error
# response and a client never reads back data that was not stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_now(context: ContextDep) -> datetime:
    """The request's notion of now (UTC); a dependency so tests can pin the clock."""
    return context.clock()


NowDep = Annotated[datetime, Depends(get_now)]


def get_principal(
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller, or 401."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise api_error(401, "a bearer token is required", headers=challenge)
    principal = resolve_principal(session, context.settings, credentials.credentials, now=now)
    if principal is None:
        raise api_error(401, "the token is invalid, expired or revoked", headers=challenge)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency allowing the given roles (admin is always allowed), else 403."""
    allowed = frozenset(roles) | {"admin"}

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise api_error(
                403,
                f"role {principal.role} may not do this",
                details={"allowed_roles": sorted(allowed)},
            )
        return principal

    return check
