"""/gateways: registration by admins, self-service status for each gateway."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select

from cloud.api.deps import ContextDep, NowDep, PrincipalDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES, api_error
from cloud.api.routes._common import AdminDep, EngineerDep, page_of
from cloud.api.schemas import (
    GatewayCreate,
    GatewayCreated,
    GatewayPublic,
    GatewayStatusUpdate,
    Page,
)
from cloud.api.schemas.ingest import GatewayEventPublic
from cloud.api.schemas.queries import PageQuery
from cloud.db.models import Asset, Gateway, GatewayEvent
from cloud.domain import gateways as gateways_domain
from ironwatch.ids import ID_PATTERN

router = APIRouter(prefix="/gateways", tags=["gateways"], responses=ERROR_RESPONSES)
GatewayId = Annotated[str, Path(pattern=ID_PATTERN)]


def _public(session: SessionDep, gateway: Gateway) -> GatewayPublic:
    asset_ids = session.scalars(
        select(Asset.id).where(Asset.gateway_id == gateway.id).order_by(Asset.id)
    ).all()
    public = GatewayPublic.model_validate(gateway)
    public.asset_ids = list(asset_ids)
    return public


@router.get("", response_model=Page[GatewayPublic])
def list_gateways(
    session: SessionDep, _: EngineerDep, q: Annotated[PageQuery, Query()]
) -> Page[GatewayPublic]:
    """Gateways, ordered by id."""
    return page_of(
        session,
        select(Gateway).order_by(Gateway.id),
        limit=q.limit,
        offset=q.offset,
        schema=GatewayPublic,
        convert=lambda g: _public(session, g),
    )


@router.post("", response_model=GatewayCreated, status_code=201)
def create_gateway(
    body: GatewayCreate, session: SessionDep, context: ContextDep, _: AdminDep
) -> GatewayCreated:
    """Register a gateway; with `with_credentials`, its broker password is returned once."""
    gateway, password = gateways_domain.register_gateway(
        session, gateway_id=body.id, name=body.name, with_credentials=body.with_credentials
    )
    context.fleet_changed()
    return GatewayCreated(**_public(session, gateway).model_dump(), password=password)


@router.get("/{gateway_id}", response_model=GatewayPublic)
def get_gateway(
    gateway_id: GatewayId, session: SessionDep, principal: PrincipalDep
) -> GatewayPublic:
    """A gateway's registration: engineers and admins see all, a gateway only itself."""
    if principal.role not in ("engineer", "admin") and not principal.can_act_for_gateway(
        gateway_id
    ):
        raise api_error(403, "a gateway token may only read its own registration")
    return _public(session, gateways_domain.get_gateway(session, gateway_id))


@router.get("/{gateway_id}/events", response_model=Page[GatewayEventPublic])
def list_gateway_events(
    gateway_id: GatewayId, session: SessionDep, _: EngineerDep, q: Annotated[PageQuery, Query()]
) -> Page[GatewayEventPublic]:
    """What happened to a gateway that an operator should know (e.g. a new outbox), newest first."""
    gateways_domain.get_gateway(session, gateway_id)
    return page_of(
        session,
        select(GatewayEvent).where(GatewayEvent.gateway_id == gateway_id)
        .order_by(GatewayEvent.id.desc()),
        limit=q.limit,
        offset=q.offset,
        schema=GatewayEventPublic,
    )


@router.put("/{gateway_id}/status", response_model=GatewayPublic)
def report_status(
    gateway_id: GatewayId,
    body: GatewayStatusUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    now: NowDep,
) -> GatewayPublic:
    """A gateway reports its own state and counters (admins may too)."""
    if not principal.can_act_for_gateway(gateway_id):
        raise api_error(403, "only the gateway itself (or an admin) may report its status")
    gateway = gateways_domain.record_status(
        session,
        gateway_id=gateway_id,
        state=body.state,
        now=now,
        seq=body.seq,
        software_version=body.software_version,
        counters=body.counters,
    )
    return _public(session, gateway)


@router.delete("/{gateway_id}", status_code=204)
def delete_gateway(
    gateway_id: GatewayId, session: SessionDep, context: ContextDep, _: AdminDep
) -> Response:
    """Remove a gateway; its assets stay, unassigned."""
    session.delete(gateways_domain.get_gateway(session, gateway_id))
    session.flush()
    context.fleet_changed()
    return Response(status_code=204)
