"""One router per resource, all mounted under /api/v1."""

from cloud.api.routes import (
    alerts,
    assets,
    customer_service,
    customers,
    dead_letters,
    gateways,
    health,
    kpis,
    maintenance,
    notifications,
    subscriptions,
    telemetry,
    tokens,
    webhooks,
    work_orders,
)

__all__ = [
    "alerts",
    "assets",
    "customer_service",
    "customers",
    "dead_letters",
    "gateways",
    "health",
    "kpis",
    "maintenance",
    "notifications",
    "subscriptions",
    "telemetry",
    "tokens",
    "webhooks",
    "work_orders",
]
