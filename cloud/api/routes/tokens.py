"""/tokens: API tokens, admin only; a new token is shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from cloud.api.deps import NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import AdminDep, page_of
from cloud.api.schemas import Page, TokenCreate, TokenCreated, TokenPublic
from cloud.api.schemas.common import MAX_DB_INT
from cloud.api.schemas.queries import PageQuery
from cloud.db.models import ApiToken
from cloud.domain import tokens as tokens_domain

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=ERROR_RESPONSES)
TokenId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


@router.get("", response_model=Page[TokenPublic])
def list_tokens(
    session: SessionDep, _: AdminDep, q: Annotated[PageQuery, Query()]
) -> Page[TokenPublic]:
    """Tokens' metadata (never the tokens themselves)."""
    query = select(ApiToken).order_by(ApiToken.id)
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=TokenPublic)


@router.post("", response_model=TokenCreated, status_code=201)
def create_token(
    body: TokenCreate, session: SessionDep, now: NowDep, principal: AdminDep
) -> TokenCreated:
    """Create a token; the response is the only time the token text is shown."""
    row, text = tokens_domain.create_token(
        session,
        name=body.name,
        role=body.role,
        actor=principal.name,
        now=now,
        gateway_id=body.gateway_id,
        customer_id=body.customer_id,
        expires_at=body.expires_at,
    )
    return TokenCreated(**TokenPublic.model_validate(row).model_dump(), token=text)


@router.delete("/{token_id}", response_model=TokenPublic)
def revoke_token(token_id: TokenId, session: SessionDep, now: NowDep, _: AdminDep) -> TokenPublic:
    """Revoke a token; it stops working at once."""
    return TokenPublic.model_validate(tokens_domain.revoke_token(session, token_id, now=now))
