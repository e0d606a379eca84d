"""Schemas for customers, their sites and contacts.

The create bodies are the domain's specs (the same types a fleet file's `[[customers]]`
and `[[sites]]` entries are), so the API and the fleet file accept the same things.
"""

from __future__ import annotations

from pydantic import EmailStr, Field

from cloud.api.schemas.common import InputModel, PublicModel, UtcTime
from cloud.domain.customers import ContactRole, ContactSpec, CustomerSpec, SiteSpec, TimezoneName
from cloud.domain.vocabulary import CustomerTier
from ironwatch.ids import Id

__all__ = [
    "ContactCreate",
    "ContactPublic",
    "ContactUpdate",
    "CustomerCreate",
    "CustomerPublic",
    "CustomerUpdate",
    "FaultReport",
    "SiteCreate",
    "SitePublic",
    "SiteUpdate",
    "WorkOrderRating",
]

CustomerCreate = CustomerSpec
SiteCreate = SiteSpec
ContactCreate = ContactSpec

_Name = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$")


class CustomerUpdate(InputModel):
    """Fields to change on a customer; a new tier applies to work orders opened from now."""

    name: str | None = _Name
    tier: CustomerTier | None = None


class SiteUpdate(InputModel):
    """Fields to change on a site; `address: null` removes the address."""

    name: str | None = _Name
    region: str | None = Field(default=None, max_length=64, pattern=r"^[^\x00-\x1f]*$")
    timezone: TimezoneName | None = None
    address: str | None = Field(default=None, max_length=1000)


class ContactUpdate(InputModel):
    """Fields to change on a contact."""

    name: str | None = _Name
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=64, pattern=r"^[0-9+()./ \-]*$")
    role: ContactRole | None = None


class ContactPublic(PublicModel):
    """A contact as the API shows it."""

    id: int
    customer_id: str
    name: str
    email: str
    phone: str
    role: str
    created_at: UtcTime


class SitePublic(PublicModel):
    """A site as the API shows it."""

    id: str
    customer_id: str
    name: str
    region: str
    timezone: str
    address: str | None
    created_at: UtcTime


class CustomerPublic(PublicModel):
    """A customer with its sites and contacts."""

    id: str
    name: str
    tier: str
    created_at: UtcTime
    sites: list[SitePublic]
    contacts: list[ContactPublic]


class FaultReport(InputModel):
    """A fault the customer reports on one of its machines; opens a work order."""

    asset_id: Id
    description: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")


class WorkOrderRating(InputModel):
    """The customer's satisfaction with a finished work order, 1 (poor) to 5 (excellent)."""

    satisfaction: int = Field(ge=1, le=5)
    feedback: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")
