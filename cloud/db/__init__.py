"""Relational storage of the cloud: models, engines, sessions and migrations."""

from cloud.db.engine import SessionFactory, make_engine, make_session_factory
from cloud.db.migrate import alembic_config, upgrade
from cloud.db.models import (
    OPEN_ALERT_STATES,
    OPEN_WORK_ORDER_STATES,
    Alert,
    AlertEvent,
    ApiToken,
    Asset,
    Base,
    DashboardSession,
    Escalation,
    Gateway,
    MaintenancePlan,
    Verdict,
    WebhookDelivery,
    WorkOrder,
    WorkOrderEvent,
)

__all__ = [
    "OPEN_ALERT_STATES",
    "OPEN_WORK_ORDER_STATES",
    "Alert",
    "AlertEvent",
    "ApiToken",
    "Asset",
    "Base",
    "DashboardSession",
    "Escalation",
    "Gateway",
    "MaintenancePlan",
    "SessionFactory",
    "Verdict",
    "WebhookDelivery",
    "WorkOrder",
    "WorkOrderEvent",
    "alembic_config",
    "make_engine",
    "make_session_factory",
    "upgrade",
]
