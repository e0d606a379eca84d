"""Customers, their sites and contacts: who owns a machine, where it stands, whom to call.

An asset belongs to a site, a site to a customer, and the customer's tier tightens the
response deadline of the asset's work orders (`Asset.tier`). Assets registered before
customers existed have no site and keep their own `customer_tier` as a fallback.

Functions flush but never commit, like the rest of the domain.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, WithJsonSchema
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db.models import ApiToken, Asset, Contact, Customer, Site, check_timezone
from cloud.domain.errors import ConflictError, InvalidInputError, NotFoundError
from cloud.domain.vocabulary import CUSTOMER_TIERS, CustomerTier
from ironwatch.ids import Id

__all__ = [
    "ContactRole",
    "ContactSpec",
    "CustomerSpec",
    "SiteSpec",
    "TimezoneName",
    "delete_contact",
    "delete_customer",
    "delete_site",
    "get_contact",
    "get_customer",
    "get_site",
    "put_contact",
    "put_customer",
    "put_site",
    "update_contact",
    "update_customer",
    "update_site",
]

TimezoneName = Annotated[
    str,
    AfterValidator(check_timezone),
    WithJsonSchema({"type": "string", "examples": ["Europe/Berlin", "Asia/Shanghai"]}),
]
"""An IANA time-zone name that zoneinfo knows."""

ContactRole = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        examples=["plant_manager", "maintenance"],
        description="lower-case word, e.g. plant_manager, maintenance, purchasing",
    ),
]
_Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$")]


class ContactSpec(BaseModel):
    """A person at a customer."""

    model_config = ConfigDict(extra="forbid")

    name: _Name
    email: EmailStr
    phone: str = Field(default="", max_length=64, pattern=r"^[0-9+()./ \-]*$")
    role: ContactRole = "maintenance"


class CustomerSpec(BaseModel):
    """A customer, as the fleet file or the API gives it; contacts optional."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    name: _Name
    tier: CustomerTier = "standard"
    contacts: list[ContactSpec] = Field(default_factory=list)


class SiteSpec(BaseModel):
    """A site of a customer, as the fleet file or the API gives it."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    customer_id: Id
    name: _Name
    region: str = Field(default="", max_length=64, pattern=r"^[^\x00-\x1f]*$")
    timezone: TimezoneName = "UTC"
    address: str | None = Field(default=None, max_length=1000)


# --- customers -------------------------------------------------------------------------


def get_customer(session: Session, customer_id: str) -> Customer:
    """The customer with this id, or NotFoundError."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFoundError(f"customer {customer_id} not found")
    return customer


def put_customer(session: Session, spec: CustomerSpec, *, create_only: bool = False) -> Customer:
    """Create the customer, or update name and tier of an existing one (upsert).

    Contacts in the spec are added when no contact of that customer has the same e-mail.
    `create_only` makes an existing id a ConflictError (the API's POST).
    """
    customer = session.get(Customer, spec.id)
    if customer is None:
        customer = Customer(id=spec.id, name=spec.name, tier=spec.tier)
        session.add(customer)
    elif create_only:
        raise ConflictError(f"customer {spec.id} already exists", details={"id": spec.id})
    else:
        customer.name = spec.name
        customer.tier = spec.tier
    session.flush()
    known = {c.email.lower() for c in customer.contacts}
    for contact in spec.contacts:
        if contact.email.lower() not in known:
            put_contact(session, customer.id, contact)
            known.add(contact.email.lower())
    return customer


def update_customer(session: Session, customer_id: str, changes: dict[str, Any]) -> Customer:
    """Change name and/or tier; the new tier applies to work orders opened from now on."""
    customer = get_customer(session, customer_id)
    if "tier" in changes and changes["tier"] not in CUSTOMER_TIERS:
        raise InvalidInputError(
            f"unknown tier {changes['tier']!r}", details={"allowed": list(CUSTOMER_TIERS)}
        )
    _apply(customer, changes, {"name", "tier"})
    session.flush()
    return customer


def delete_customer(session: Session, customer_id: str) -> None:
    """Delete a customer with its sites, contacts and tokens; ConflictError if it owns assets."""
    customer = get_customer(session, customer_id)
    n_assets = session.scalar(
        select(func.count(Asset.id)).join(Site).where(Site.customer_id == customer_id)
    )
    if n_assets:
        raise ConflictError(
            f"customer {customer_id} still owns {n_assets} asset(s); move or delete them first",
            details={"assets": n_assets},
        )
    for token in session.scalars(select(ApiToken).where(ApiToken.customer_id == customer_id)):
        session.delete(token)
    session.flush()
    session.delete(customer)
    session.flush()


# --- sites -----------------------------------------------------------------------------


def get_site(session: Session, site_id: str) -> Site:
    """The site with this id, or NotFoundError."""
    site = session.get(Site, site_id)
    if site is None:
        raise NotFoundError(f"site {site_id} not found")
    return site


def put_site(session: Session, spec: SiteSpec, *, create_only: bool = False) -> Site:
    """Create or update a site (upsert); its customer must exist."""
    customer = session.get(Customer, spec.customer_id)
    if customer is None:
        raise NotFoundError(f"customer {spec.customer_id} not found")
    site = session.get(Site, spec.id)
    if site is None:
        site = Site(id=spec.id, customer_id=spec.customer_id, name=spec.name)
        session.add(site)
    elif create_only:
        raise ConflictError(f"site {spec.id} already exists", details={"id": spec.id})
    elif site.customer_id != spec.customer_id:
        raise ConflictError(
            f"site {spec.id} belongs to customer {site.customer_id}, not {spec.customer_id}",
            details={"customer_id": site.customer_id},
        )
    site.name = spec.name
    site.region = spec.region
    site.timezone = spec.timezone
    site.address = spec.address
    session.flush()
    return site


def update_site(session: Session, site_id: str, changes: dict[str, Any]) -> Site:
    """Change name, region, time zone or address of a site."""
    site = get_site(session, site_id)
    if "timezone" in changes and changes["timezone"] is not None:
        _check_timezone(changes["timezone"])
    _apply(site, changes, {"name", "region", "timezone", "address"}, nullable={"address"})
    session.flush()
    return site


def delete_site(session: Session, site_id: str) -> None:
    """Delete a site; ConflictError while assets still belong to it."""
    site = get_site(session, site_id)
    n_assets = session.scalar(select(func.count(Asset.id)).where(Asset.site_id == site_id))
    if n_assets:
        raise ConflictError(
            f"site {site_id} still has {n_assets} asset(s); move or delete them first",
            details={"assets": n_assets},
        )
    session.delete(site)
    session.flush()


# --- contacts --------------------------------------------------------------------------


def get_contact(session: Session, contact_id: int, *, customer_id: str | None = None) -> Contact:
    """The contact with this id (of this customer, when given), or NotFoundError."""
    contact = session.get(Contact, contact_id)
    if contact is None or (customer_id is not None and contact.customer_id != customer_id):
        raise NotFoundError(f"contact {contact_id} not found")
    return contact


def put_contact(session: Session, customer_id: str, spec: ContactSpec) -> Contact:
    """Add a contact to a customer."""
    get_customer(session, customer_id)
    contact = Contact(
        customer_id=customer_id,
        name=spec.name,
        email=spec.email,
        phone=spec.phone,
        role=spec.role,
    )
    session.add(contact)
    session.flush()
    return contact


def update_contact(
    session: Session, contact_id: int, changes: dict[str, Any], *, customer_id: str | None = None
) -> Contact:
    """Change fields of a contact."""
    contact = get_contact(session, contact_id, customer_id=customer_id)
    _apply(contact, changes, {"name", "email", "phone", "role"})
    session.flush()
    return contact


def delete_contact(session: Session, contact_id: int, *, customer_id: str | None = None) -> None:
    """Remove a contact."""
    session.delete(get_contact(session, contact_id, customer_id=customer_id))
    session.flush()


# --- helpers ---------------------------------------------------------------------------


def _check_timezone(name: str) -> None:
    try:
        check_timezone(name)
    except ValueError as err:
        raise InvalidInputError(str(err)) from err


def _apply(
    row: object, changes: dict[str, Any], allowed: Iterable[str], *, nullable: Iterable[str] = ()
) -> None:
    allowed = set(allowed)
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInputError(f"cannot edit {', '.join(sorted(unknown))}")
    for field, value in changes.items():
        if value is None and field not in set(nullable):
            raise InvalidInputError(f"{field} cannot be null")
        setattr(row, field, value)
