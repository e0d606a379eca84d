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
from cloud.domain.policy import ServiceLevelPolicy, decide_priority, load_policy
from cloud.domain.registry import DbAssetRegistry, seed_fleet
from cloud.domain.workorders import open_from_alert, open_manual, transition, update_work_order

__all__ = [
    "ConflictError",
    "DbAssetRegistry",
    "DomainError",
    "FailureMode",
    "FailureModeCatalogue",
    "InvalidInputError",
    "InvalidTransitionError",
    "NotFoundError",
    "ServiceLevelPolicy",
    "acknowledge",
    "clear_condition",
    "decide_priority",
    "load_catalogue",
    "load_policy",
    "open_from_alert",
    "open_manual",
    "resolve",
    "seed_fleet",
    "transition",
    "update_work_order",
    "upsert_alert",
]
