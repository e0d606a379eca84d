"""/customers, /sites and a customer's /contacts: who owns the machines, where, whom to call.

The service desk and admins create and change them; engineers read them; a customer
token reads its own customer only (any other id answers 404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select

from cloud.api.auth import Principal
from cloud.api.deps import SessionDep
from cloud.api.errors import ERROR_RESPONSES
from cloud.api.routes._common import CustomerReaderDep, ServiceDeskDep, page_of
from cloud.api.schemas.common import MAX_DB_INT, Page
from cloud.api.schemas.customers import (
    ContactCreate,
    ContactPublic,
    ContactUpdate,
    CustomerCreate,
    CustomerPublic,
    CustomerUpdate,
    SiteCreate,
    SitePublic,
    SiteUpdate,
)
from cloud.api.schemas.queries import CustomerQuery, SiteQuery
from cloud.db.models import Contact, Customer, Site
from cloud.domain import customers as customers_domain
from cloud.domain.errors import NotFoundError
from ironwatch.ids import ID_PATTERN

router = APIRouter(tags=["customers"], responses=ERROR_RESPONSES)
CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]
SiteId = Annotated[str, Path(pattern=ID_PATTERN)]
ContactId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


def _customer(session: SessionDep, principal: Principal, customer_id: str) -> Customer:
    """The customer, if the caller may see it; another customer's id is simply not found."""
    scope = principal.scope
    if not scope.whole_fleet and scope.customer_id != customer_id:
        raise NotFoundError(f"customer {customer_id} not found")
    return customers_domain.get_customer(session, customer_id)


def _site(session: SessionDep, principal: Principal, site_id: str) -> Site:
    site = session.get(Site, site_id)
    scope = principal.scope
    if site is None or (not scope.whole_fleet and site.customer_id != scope.customer_id):
        raise NotFoundError(f"site {site_id} not found")
    return site


# --- customers -------------------------------------------------------------------------


@router.get("/customers", response_model=Page[CustomerPublic])
def list_customers(
    session: SessionDep, principal: CustomerReaderDep, q: Annotated[CustomerQuery, Query()]
) -> Page[CustomerPublic]:
    """Customers by id, filtered by tier; a customer token sees only its own."""
    query = select(Customer).order_by(Customer.id)
    if not principal.scope.whole_fleet:
        query = query.where(Customer.id == principal.scope.customer_id)
    if q.tier:
        query = query.where(Customer.tier.in_(q.tier))
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=CustomerPublic)


@router.post("/customers", response_model=CustomerPublic, status_code=201)
def create_customer(
    body: CustomerCreate, session: SessionDep, _: ServiceDeskDep
) -> CustomerPublic:
    """Create a customer (with contacts, if given); 409 if the id is taken."""
    customer = customers_domain.put_customer(session, body, create_only=True)
    session.refresh(customer)
    return CustomerPublic.model_validate(customer)


@router.get("/customers/{customer_id}", response_model=CustomerPublic)
def get_customer(
    customer_id: CustomerId, session: SessionDep, principal: CustomerReaderDep
) -> CustomerPublic:
    """One customer with its sites and contacts."""
    return CustomerPublic.model_validate(_customer(session, principal, customer_id))


@router.patch("/customers/{customer_id}", response_model=CustomerPublic)
def update_customer(
    customer_id: CustomerId, body: CustomerUpdate, session: SessionDep, _: ServiceDeskDep
) -> CustomerPublic:
    """Change name or tier; the tier applies to work orders opened from now on."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return CustomerPublic.model_validate(
        customers_domain.update_customer(session, customer_id, changes)
    )


@router.delete("/customers/{customer_id}", status_code=204)
def delete_customer(customer_id: CustomerId, session: SessionDep, _: ServiceDeskDep) -> Response:
    """Delete a customer with its sites, contacts and tokens; 409 while it owns assets."""
    customers_domain.delete_customer(session, customer_id)
    return Response(status_code=204)


# --- sites -----------------------------------------------------------------------------


@router.get("/sites", response_model=Page[SitePublic])
def list_sites(
    session: SessionDep, principal: CustomerReaderDep, q: Annotated[SiteQuery, Query()]
) -> Page[SitePublic]:
    """Sites by id, filtered by customer or region; a customer token sees its own only."""
    query = select(Site).order_by(Site.id)
    if not principal.scope.whole_fleet:
        query = query.where(Site.customer_id == principal.scope.customer_id)
    if q.customer_id:
        query = query.where(Site.customer_id.in_(q.customer_id))
    if q.region:
        query = query.where(Site.region.in_(q.region))
    return page_of(session, query, limit=q.limit, offset=q.offset, schema=SitePublic)


@router.post("/sites", response_model=SitePublic, status_code=201)
def create_site(body: SiteCreate, session: SessionDep, _: ServiceDeskDep) -> SitePublic:
    """Create a site of an existing customer; 409 if the id is taken."""
    return SitePublic.model_validate(customers_domain.put_site(session, body, create_only=True))


@router.get("/sites/{site_id}", response_model=SitePublic)
def get_site(site_id: SiteId, session: SessionDep, principal: CustomerReaderDep) -> SitePublic:
    """One site."""
    return SitePublic.model_validate(_site(session, principal, site_id))


@router.patch("/sites/{site_id}", response_model=SitePublic)
def update_site(
    site_id: SiteId, body: SiteUpdate, session: SessionDep, _: ServiceDeskDep
) -> SitePublic:
    """Change a site; absent fields stay, `address: null` removes the address."""
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "region", "timezone"):
        if field in changes and changes[field] is None:
            del changes[field]
    return SitePublic.model_validate(customers_domain.update_site(session, site_id, changes))


@router.delete("/sites/{site_id}", status_code=204)
def delete_site(site_id: SiteId, session: SessionDep, _: ServiceDeskDep) -> Response:
    """Delete a site; 409 while assets belong to it."""
    customers_domain.delete_site(session, site_id)
    return Response(status_code=204)


# --- contacts --------------------------------------------------------------------------


@router.get("/customers/{customer_id}/contacts", response_model=list[ContactPublic])
def list_contacts(
    customer_id: CustomerId, session: SessionDep, principal: CustomerReaderDep
) -> list[ContactPublic]:
    """The customer's contacts."""
    customer = _customer(session, principal, customer_id)
    return [ContactPublic.model_validate(c) for c in customer.contacts]


@router.post(
    "/customers/{customer_id}/contacts", response_model=ContactPublic, status_code=201
)
def create_contact(
    customer_id: CustomerId, body: ContactCreate, session: SessionDep, _: ServiceDeskDep
) -> ContactPublic:
    """Add a contact to a customer."""
    return ContactPublic.model_validate(customers_domain.put_contact(session, customer_id, body))


@router.get("/customers/{customer_id}/contacts/{contact_id}", response_model=ContactPublic)
def get_contact(
    customer_id: CustomerId,
    contact_id: ContactId,
    session: SessionDep,
    principal: CustomerReaderDep,
) -> ContactPublic:
    """One contact of the customer."""
    _customer(session, principal, customer_id)
    return ContactPublic.model_validate(
        customers_domain.get_contact(session, contact_id, customer_id=customer_id)
    )


@router.patch("/customers/{customer_id}/contacts/{contact_id}", response_model=ContactPublic)
def update_contact(
    customer_id: CustomerId,
    contact_id: ContactId,
    body: ContactUpdate,
    session: SessionDep,
    _: ServiceDeskDep,
) -> ContactPublic:
    """Change a contact; absent fields stay as they are."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    contact: Contact = customers_domain.update_contact(
        session, contact_id, changes, customer_id=customer_id
    )
    return ContactPublic.model_validate(contact)


@router.delete("/customers/{customer_id}/contacts/{contact_id}", status_code=204)
def delete_contact(
    customer_id: CustomerId, contact_id: ContactId, session: SessionDep, _: ServiceDeskDep
) -> Response:
    """Remove a contact."""
    customers_domain.delete_contact(session, contact_id, customer_id=customer_id)
    return Response(status_code=204)
