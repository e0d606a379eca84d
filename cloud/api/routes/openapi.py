"""/openapi.json: the API's own description, behind a token like every endpoint but health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from cloud.api.deps import PrincipalDep
from cloud.api.errors import ERROR_RESPONSES

router = APIRouter(tags=["meta"], responses=ERROR_RESPONSES)


@router.get("/openapi.json", include_in_schema=False)
def openapi_document(request: Request, _: PrincipalDep) -> dict[str, Any]:
    """The OpenAPI document of this service, for any valid token."""
    document: dict[str, Any] = request.app.openapi()
    return document
