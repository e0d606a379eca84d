"""Stored operating reports: the period a report covers, filing one idempotently, listing,
and which monthly reports are due.

The report's content (HTML and CSV) is made by the dashboard (cloud.dashboard._reports),
which knows the templates and the telemetry; this module only keeps what it made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from cloud.db.models import Asset, Customer, OperatingReport
from cloud.domain.clock import require_utc
from cloud.domain.errors import InvalidInputError, NotFoundError

__all__ = [
    "REPORT_KINDS",
    "ReportKind",
    "ReportPage",
    "Subject",
    "due_reports",
    "file_report",
    "get_report",
    "list_reports",
    "month_period",
    "previous_month",
]

ReportKind = Literal["asset", "customer"]
REPORT_KINDS: tuple[ReportKind, ...] = ("asset", "customer")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def _add_month(at: datetime) -> datetime:
    return _month_start(at.year + 1, 1) if at.month == 12 else _month_start(at.year, at.month + 1)


def month_period(month: str | None, now: datetime) -> tuple[datetime, datetime]:
    """[first, next first) of `month` ("YYYY-MM"; UTC) or of the current month by default."""
    now = require_utc(now)
    if not month:
        start = _month_start(now.year, now.month)
        return start, _add_month(start)
    found = _MONTH.match(month)
    if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1970:
        raise InvalidInputError(f"month must be YYYY-MM, not {month[:20]!r}")
    start = _month_start(int(found.group(1)), int(found.group(2)))
    return start, _add_month(start)


def previous_month(now: datetime) -> tuple[datetime, datetime]:
    """The last whole month before `now`."""
    this = _month_start(now.year, now.month)
    prev = (
        _month_start(this.year - 1, 12)
        if this.month == 1
        else _month_start(this.year, this.month - 1)
    )
    return prev, this


@dataclass(frozen=True)
class Subject:
    """What a report is about: an asset or a customer."""

    kind: ReportKind
    id: str
    name: str


def due_reports(session: Session, now: datetime) -> tuple[datetime, datetime, list[Subject]]:
    """Last month's reports not yet filed: every asset registered before the month ended
    and every customer."""
    start, end = previous_month(require_utc(now))
    filed = {
        (kind, subject)
        for kind, subject in session.execute(
            select(OperatingReport.kind, OperatingReport.subject_id).where(
                OperatingReport.period_start == start
            )
        )
    }
    subjects: list[Subject] = []
    for asset_id, name in session.execute(
        select(Asset.id, Asset.name).where(Asset.created_at < end).order_by(Asset.id)
    ):
        if ("asset", asset_id) not in filed:
            subjects.append(Subject("asset", asset_id, name or asset_id))
    for customer_id, name in session.execute(
        select(Customer.id, Customer.name).order_by(Customer.id)
    ):
        if ("customer", customer_id) not in filed:
            subjects.append(Subject("customer", customer_id, name))
    return start, end, subjects


def file_report(
    session: Session,
    subject: Subject,
    *,
    start: datetime,
    end: datetime,
    html: str,
    csv: str,
    locale: str,
    now: datetime,
    generated_by: str = "schedule",
) -> OperatingReport:
    """Store a report; if one for this subject and period exists, that one is kept and
    returned (a second run, or two processes at once, change nothing)."""
    existing = _find(session, subject, start)
    if existing is not None:
        return existing
    report = OperatingReport(
        kind=subject.kind,
        subject_id=subject.id,
        subject_name=subject.name,
        period_start=require_utc(start),
        period_end=require_utc(end),
        locale=locale,
        html=html,
        csv=csv,
        generated_at=require_utc(now),
        generated_by=generated_by,
    )
    try:
        with session.begin_nested():
            session.add(report)
    except IntegrityError:
        found = _find(session, subject, start)
        if found is None:
            raise
        return found
    return report


def _find(session: Session, subject: Subject, start: datetime) -> OperatingReport | None:
    return session.scalars(
        select(OperatingReport).where(
            OperatingReport.kind == subject.kind,
            OperatingReport.subject_id == subject.id,
            OperatingReport.period_start == start,
        )
    ).first()


def get_report(session: Session, report_id: int) -> OperatingReport:
    report = session.get(OperatingReport, report_id)
    if report is None:
        raise NotFoundError(f"report {report_id} not found")
    return report


@dataclass(frozen=True)
class ReportPage:
    items: list[OperatingReport]
    total: int


def list_reports(
    session: Session,
    *,
    kind: str | None = None,
    subject_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> ReportPage:
    """Stored reports, newest period first (the HTML and CSV bodies are not loaded)."""
    if kind is not None and kind not in REPORT_KINDS:
        raise InvalidInputError(
            f"unknown report kind {kind!r}", details={"allowed": list(REPORT_KINDS)}
        )
    query = select(OperatingReport)
    count = select(func.count(OperatingReport.id))
    if kind is not None:
        query, count = (
            query.where(OperatingReport.kind == kind),
            count.where(OperatingReport.kind == kind),
        )
    if subject_id is not None:
        query = query.where(OperatingReport.subject_id == subject_id)
        count = count.where(OperatingReport.subject_id == subject_id)
    items = session.scalars(
        query.options(defer(OperatingReport.html), defer(OperatingReport.csv))
        .order_by(
            OperatingReport.period_start.desc(), OperatingReport.kind, OperatingReport.subject_id
        )
        .limit(limit)
        .offset(offset)
    ).all()
    return ReportPage(items=list(items), total=int(session.scalar(count) or 0))
