"""The periodic jobs in one call: escalate missed deadlines, open running-hours reminders.

The service's scheduler calls `run_housekeeping` every minute or so; both steps are
idempotent, so a missed or doubled tick does no harm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cloud.db.models import Escalation, WorkOrder
from cloud.domain.catalogue import FailureModeCatalogue
from cloud.domain.escalation import check_escalations
from cloud.domain.policy import DEFAULT_POLICY, ServiceLevelPolicy
from cloud.domain.reminders import check_maintenance_plans

__all__ = ["HousekeepingReport", "run_housekeeping"]


@dataclass(frozen=True)
class HousekeepingReport:
    """What one tick did."""

    escalations: list[Escalation]
    reminders: list[WorkOrder]


def run_housekeeping(
    session: Session,
    now: datetime,
    *,
    policy: ServiceLevelPolicy | None = None,
    catalogue: FailureModeCatalogue | None = None,
    dashboard_url: str = "",
) -> HousekeepingReport:
    """Run escalation and reminder checks; not committed (the caller commits)."""
    return HousekeepingReport(
        escalations=check_escalations(
            session, now, policy=policy or DEFAULT_POLICY, dashboard_url=dashboard_url
        ),
        reminders=check_maintenance_plans(session, now, policy=policy, catalogue=catalogue),
    )
