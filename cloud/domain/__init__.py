"""The cloud domain: fleet registry, alerts, work orders, service levels, escalation, KPIs.

Functions take a SQLAlchemy session and an explicit UTC `now`; they flush but never
commit, so the caller decides the transaction (one scoring round, one API request).
"""

from cloud.domain.alerts import acknowledge, clear_condition, resolve, upsert_alert
from cloud.domain.catalogue import FailureMode, FailureModeCatalogue, load_catalogue
from cloud.domain.errors import (
    ConflictError,
    DomainError,
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
)
from cloud.domain.escalation import check_escalations
from cloud.domain.housekeeping import HousekeepingReport, run_housekeeping
from cloud.domain.kpis import Kpis, compute_kpis
from cloud.domain.policy import ServiceLevelPolicy, decide_priority, load_policy
from cloud.domain.registry import DbAssetRegistry, seed_fleet
from cloud.domain.reminders import add_running_hours, check_maintenance_plans, create_plan
from cloud.domain.verdicts import record_verdict
from cloud.domain.workorders import (
    assign,
    open_from_alert,
    open_manual,
    rate_work_order,
    transition,
    update_work_order,
)

__all__ = [
    "ConflictError",
    "DbAssetRegistry",
    "DomainError",
    "FailureMode",
    "FailureModeCatalogue",
    "HousekeepingReport",
    "InvalidInputError",
    "InvalidTransitionError",
    "Kpis",
    "NotFoundError",
    "ServiceLevelPolicy",
    "acknowledge",
    "add_running_hours",
    "assign",
    "check_escalations",
    "check_maintenance_plans",
    "clear_condition",
    "compute_kpis",
    "create_plan",
    "decide_priority",
    "load_catalogue",
    "load_policy",
    "open_from_alert",
    "open_manual",
    "rate_work_order",
    "record_verdict",
    "resolve",
    "run_housekeeping",
    "seed_fleet",
    "transition",
    "update_work_order",
    "upsert_alert",
]
