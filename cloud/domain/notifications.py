"""E-mail notifications: who receives what (recipients per role) and the e-mail outbox.

An escalation writes one `EmailDelivery` per recipient of each role its ladder level
notifies, in the same transaction as the escalation; `cloud.mail` sends them later over
SMTP with retries. Nothing here talks to a mail server. Internal roles (supervisor,
manager, ...) map to `NotificationRecipient` rows; `customer` means the contacts (with an
e-mail address) of the customer owning the work order's asset, `customer:<role>` only
those contacts with that role.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.db.models import (
    Contact,
    EmailDelivery,
    Escalation,
    NotificationRecipient,
    WorkOrder,
)
from cloud.domain.errors import ConflictError, InvalidInputError, NotFoundError
from cloud.domain.policy import EscalationLevel

__all__ = [
    "EMAIL_PATTERN",
    "ROLE_PATTERN",
    "add_recipient",
    "compose_escalation_email",
    "enqueue_escalation_emails",
    "remove_recipient",
]

# Deliberately plain: one @, no spaces or angle brackets; the SMTP server has the last word.
EMAIL_PATTERN = r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$"
ROLE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
# In a level's `notify`: the customer's contacts rather than one of our own roles.
CUSTOMER = "customer"
_EMAIL = re.compile(EMAIL_PATTERN)
_ROLE = re.compile(ROLE_PATTERN)


def add_recipient(
    session: Session, *, role: str, email: str, name: str = "", now: datetime
) -> NotificationRecipient:
    """Add an address to a role; the same address twice in one role is a conflict."""
    if not _EMAIL.match(email):
        raise InvalidInputError(f"not an e-mail address: {email!r}")
    if not _ROLE.match(role):
        raise InvalidInputError(f"not a role name: {role!r}")
    if role == CUSTOMER:
        raise InvalidInputError(
            "'customer' names the customer's contacts in a level's notify list; "
            "manage them as the customer's contacts"
        )
    row = NotificationRecipient(role=role, email=email, name=name, active=True, created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as err:
        raise ConflictError(f"{email} already receives {role} notifications") from err
    return row


def remove_recipient(session: Session, recipient_id: int) -> NotificationRecipient:
    """Delete a recipient; its past deliveries stay in the log."""
    row = session.get(NotificationRecipient, recipient_id)
    if row is None:
        raise NotFoundError(f"notification recipient {recipient_id} not found")
    session.delete(row)
    session.flush()
    return row


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def compose_escalation_email(
    wo: WorkOrder, escalation: Escalation, level: EscalationLevel, *, dashboard_url: str
) -> tuple[str, str, str]:
    """Subject, plain-text body and HTML body for one escalation of one work order."""
    asset = wo.asset.name or wo.asset_id if wo.asset is not None else wo.asset_id
    deadline = "response" if escalation.kind == "response" else "resolution"
    headline = (
        f"{deadline} deadline {_when(escalation.due_at)} is near"
        if level.is_warning
        else f"{deadline} deadline {_when(escalation.due_at)} missed"
    )
    subject = f"[Ironwatch {wo.priority}] {level.name}: work order #{wo.id} {headline}"
    subject = " ".join(subject.split())[:300]  # one line: a header cannot hold a newline
    link = f"{dashboard_url.rstrip('/')}/work-orders#wo-{wo.id}" if dashboard_url else ""
    rows = [
        ("Work order", f"#{wo.id} {wo.title}"),
        ("Asset", f"{asset} ({wo.asset_id})"),
        ("Priority", wo.priority),
        ("State", wo.state),
        ("Deadline", f"{deadline} by {_when(escalation.due_at)}"),
        ("Level", level.name),
        ("Raised", _when(escalation.raised_at)),
    ]
    text_lines = [headline[0].upper() + headline[1:] + ".", ""]
    text_lines += [f"{label}: {value}" for label, value in rows]
    if link:
        text_lines += ["", f"Open in the dashboard: {link}"]
    html_rows = "".join(
        f"<tr><th align=\"left\">{escape(label)}</th><td>{escape(value)}</td></tr>"
        for label, value in rows
    )
    html_link = f'<p><a href="{escape(link)}">Open in the dashboard</a></p>' if link else ""
    html = (
        f"<html><body><p>{escape(text_lines[0])}</p>"
        f"<table>{html_rows}</table>{html_link}</body></html>"
    )
    return subject, "\n".join(text_lines) + "\n", html


def _is_customer(target: str) -> bool:
    return target == CUSTOMER or target.startswith(CUSTOMER + ":")


def _internal_recipients(session: Session, roles: list[str]) -> list[tuple[str, str]]:
    if not roles:
        return []
    rows = session.execute(
        select(NotificationRecipient.role, NotificationRecipient.email)
        .where(NotificationRecipient.role.in_(roles), NotificationRecipient.active.is_(True))
        .order_by(NotificationRecipient.id)
    ).all()
    return [(role, email) for role, email in rows]


def _customer_contacts(
    session: Session, wo: WorkOrder, targets: list[str]
) -> list[tuple[str, str]]:
    """(customer:<contact role>, address) of the asset's customer's contacts the targets name."""
    customer_id = wo.asset.customer_id if wo.asset is not None else None
    if not targets or customer_id is None:
        return []
    every = CUSTOMER in targets
    roles = {t.split(":", 1)[1] for t in targets if ":" in t}
    contacts = session.scalars(
        select(Contact).where(Contact.customer_id == customer_id).order_by(Contact.id)
    ).all()
    return [
        (f"{CUSTOMER}:{c.role or 'contact'}", c.email)
        for c in contacts
        if c.email and _EMAIL.match(c.email) and (every or c.role in roles)
    ]


def enqueue_escalation_emails(
    session: Session,
    wo: WorkOrder,
    escalation: Escalation,
    level: EscalationLevel,
    *,
    now: datetime,
    dashboard_url: str = "",
) -> list[EmailDelivery]:
    """One pending e-mail per recipient of the level's roles (each address once)."""
    if not level.notify:
        return []
    addresses = _internal_recipients(session, [t for t in level.notify if not _is_customer(t)])
    addresses += _customer_contacts(session, wo, [t for t in level.notify if _is_customer(t)])
    if not addresses:
        return []
    subject, text, html = compose_escalation_email(
        wo, escalation, level, dashboard_url=dashboard_url
    )
    seen: set[str] = set()
    rows: list[EmailDelivery] = []
    for role, address in addresses:
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        rows.append(
            EmailDelivery(
                escalation_id=escalation.id,
                work_order_id=wo.id,
                role=role,
                to_address=address,
                subject=subject,
                body_text=text,
                body_html=html,
                state="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
    session.add_all(rows)
    return rows
