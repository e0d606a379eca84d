"""/assets: the machines, their physics, running hours and maintenance plans."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select

from cloud.api.context import ApiContext
from cloud.api.deps import ContextDep, NowDep, SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import (
    AdminDep,
    CustomerReaderDep,
    ReaderDep,
    ServiceDeskDep,
    page_of,
)
from cloud.api.schemas import (
    AssetCreate,
    AssetPublic,
    AssetScoringPublic,
    AssetUpdate,
    MaintenancePlanCreate,
    MaintenancePlanPublic,
    Page,
    RunningHoursUpdate,
)
from cloud.api.schemas.queries import AssetQuery
from cloud.db.models import Asset, Customer, Gateway, MaintenancePlan, Site
from cloud.domain import reminders
from cloud.domain.errors import ConflictError, InvalidInputError, NotFoundError
from cloud.domain.hour_meter import adjust_running_hours
from ironwatch.ids import ID_PATTERN

router = APIRouter(prefix="/assets", tags=["assets"], responses=ERROR_RESPONSES)
AssetId = Annotated[str, Path(pattern=ID_PATTERN)]


def _get(session: SessionDep, asset_id: str) -> Asset:
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFoundError(f"asset {asset_id} not found")
    return asset


def _check_site(session: SessionDep, site_id: str | None, *, tier_given: bool) -> None:
    if site_id is None:
        return
    if session.get(Site, site_id) is None:
        raise NotFoundError(f"site {site_id} not found")
    if tier_given:
        raise InvalidInputError(
            "the tier of an asset with a site comes from its customer; drop customer_tier"
        )


def _public(asset: Asset, context: ApiContext) -> AssetPublic:
    """The asset with its scoring state (last scored round, failure) where scoring runs."""
    out = AssetPublic.model_validate(asset)
    state = context.scoring.asset(asset.id) if context.scoring is not None else None
    if state is not None:
        out.scoring = AssetScoringPublic.model_validate(state)
    return out


@router.get("", response_model=Page[AssetPublic])
def list_assets(
    *,
    session: SessionDep,
    context: ContextDep,
    principal: CustomerReaderDep,
    q: Annotated[AssetQuery, Query()],
) -> Page[AssetPublic]:
    """Assets, ordered by id, filtered by gateway, kind, customer, site or tier (each
    repeatable: any of)."""
    query = principal.scope.restrict(select(Asset).order_by(Asset.id), Asset.id)
    if q.gateway_id:
        query = query.where(Asset.gateway_id.in_(q.gateway_id))
    if q.kind:
        query = query.where(Asset.kind.in_(q.kind))
    if q.site_id:
        query = query.where(Asset.site_id.in_(q.site_id))
    if q.customer_id:
        query = query.where(
            Asset.site_id.in_(select(Site.id).where(Site.customer_id.in_(q.customer_id)))
        )
    if q.customer_tier:
        # The tier that counts: the site's customer's, or the asset's own without a site.
        of_tier = select(Site.id).join(Customer).where(Customer.tier.in_(q.customer_tier))
        query = query.where(
            Asset.site_id.in_(of_tier)
            | (Asset.site_id.is_(None) & (Asset.customer_tier.in_(q.customer_tier)))
        )
    return page_of(
        session, query, limit=q.limit, offset=q.offset, schema=AssetPublic,
        convert=lambda asset: _public(asset, context),
    )


@router.post("", response_model=AssetPublic, status_code=201)
def create_asset(
    body: AssetCreate, session: SessionDep, context: ContextDep, _: AdminDep
) -> AssetPublic:
    """Register an asset under an existing gateway."""
    if session.get(Asset, body.id) is not None:
        raise ConflictError(f"asset {body.id} already exists")
    if session.get(Gateway, body.gateway_id) is None:
        raise NotFoundError(f"gateway {body.gateway_id} not found")
    _check_site(session, body.site_id, tier_given="customer_tier" in body.model_fields_set)
    asset = Asset(**body.model_dump())
    session.add(asset)
    session.flush()
    context.fleet_changed()
    return AssetPublic.model_validate(asset)


@router.get("/{asset_id}", response_model=AssetPublic)
def get_asset(
    asset_id: AssetId, session: SessionDep, context: ContextDep, principal: CustomerReaderDep
) -> AssetPublic:
    """One asset, with its scoring state: when last scored, and why not if it fails."""
    return _public(principal.scope.asset(session, asset_id), context)


@router.patch("/{asset_id}", response_model=AssetPublic)
def update_asset(
    asset_id: AssetId, body: AssetUpdate, session: SessionDep, context: ContextDep, _: AdminDep
) -> AssetPublic:
    """Change an asset's fields; absent fields stay as they are."""
    asset = _get(session, asset_id)
    changes = body.model_dump(exclude_unset=True)
    for field in ("kind", "iso_group", "foundation", "customer_tier", "name", "location"):
        if field in changes and changes[field] is None:
            del changes[field]  # these columns have no "unknown" value
    if (
        changes.get("gateway_id") is not None
        and session.get(Gateway, changes["gateway_id"]) is None
    ):
        raise NotFoundError(f"gateway {changes['gateway_id']} not found")
    if "site_id" in changes:
        _check_site(session, changes["site_id"], tier_given="customer_tier" in changes)
    for field, value in changes.items():
        setattr(asset, field, value)
    session.flush()
    context.fleet_changed()
    return AssetPublic.model_validate(asset)


@router.delete("/{asset_id}", status_code=204)
def delete_asset(
    asset_id: AssetId, session: SessionDep, context: ContextDep, _: AdminDep
) -> Response:
    """Remove an asset with its alerts and work orders."""
    session.delete(_get(session, asset_id))
    session.flush()
    context.fleet_changed()
    return Response(status_code=204)


@router.post("/{asset_id}/running-hours", response_model=AssetPublic)
def add_running_hours(
    asset_id: AssetId, body: RunningHoursUpdate, session: SessionDep, now: NowDep,
    principal: AdminDep,
) -> AssetPublic:
    """Correct the counter by hand (telemetry keeps it otherwise); kept in its history."""
    return AssetPublic.model_validate(adjust_running_hours(
        session, asset_id, body.add_hours, now=now, actor=principal.name, note=body.note
    ))


@router.get("/{asset_id}/maintenance-plans", response_model=list[MaintenancePlanPublic])
def list_plans(asset_id: AssetId, session: SessionDep, _: ReaderDep) -> list[MaintenancePlanPublic]:
    """The asset's running-hours reminders."""
    _get(session, asset_id)
    plans = session.scalars(
        select(MaintenancePlan)
        .where(MaintenancePlan.asset_id == asset_id)
        .order_by(MaintenancePlan.id)
    )
    return [MaintenancePlanPublic.model_validate(p) for p in plans]


@router.post("/{asset_id}/maintenance-plans", response_model=MaintenancePlanPublic, status_code=201)
def create_plan(
    asset_id: AssetId,
    body: MaintenancePlanCreate,
    session: SessionDep,
    now: NowDep,
    _: ServiceDeskDep,
) -> MaintenancePlanPublic:
    """A plan every `interval_hours` of operation and/or `interval_days`, counted from now."""
    plan = reminders.create_plan(
        session,
        asset_id=asset_id,
        interval_hours=body.interval_hours,
        interval_days=body.interval_days,
        name=body.name,
        task=body.task,
        priority=body.priority,
        tasks=body.tasks,
        parts=body.parts,
        now=now,
    )
    return MaintenancePlanPublic.model_validate(plan)
