"""Closed vocabularies of the domain, shared by models' callers, schemas and the API."""

from __future__ import annotations

from typing import Literal, get_args

from ironwatch.physics import Foundation, IsoGroup

__all__ = [
    "ASSET_KINDS",
    "CUSTOMER_TIERS",
    "PRIORITIES",
    "ROLES",
    "SEVERITIES",
    "WORK_ORDER_STATES",
    "AlertState",
    "AssetKind",
    "CustomerTier",
    "Foundation",
    "IsoGroup",
    "IsoZone",
    "Priority",
    "Role",
    "Severity",
    "SlaOutcome",
    "VerdictKind",
    "WorkOrderSource",
    "WorkOrderState",
]

AssetKind = Literal["motor", "pump", "fan", "spindle", "gearbox"]
CustomerTier = Literal["strategic", "key", "standard"]
Severity = Literal["advisory", "warning", "alarm", "critical"]
# ISO 20816 evaluation zones: A new, B unrestricted, C restricted, D damage.
IsoZone = Literal["A", "B", "C", "D"]
AlertState = Literal["open", "acknowledged", "resolved", "cleared"]
Priority = Literal["P0", "P1", "P2", "P3"]
WorkOrderState = Literal[
    "open", "accepted", "assigned", "in_progress", "done", "follow_up", "closed", "cancelled"
]
# How a deadline turned out: not yet judged, met, missed, or not applicable (cancelled).
SlaOutcome = Literal["pending", "met", "missed", "n/a"]
WorkOrderSource = Literal["alert", "manual", "reminder", "customer"]
VerdictKind = Literal["false_alarm", "confirmed", "inconclusive"]
# customer: bound to one customer, sees only that customer's machines (the portal).
Role = Literal["gateway", "engineer", "service_desk", "admin", "customer"]

ASSET_KINDS: tuple[AssetKind, ...] = get_args(AssetKind)
CUSTOMER_TIERS: tuple[CustomerTier, ...] = get_args(CustomerTier)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
ROLES: tuple[Role, ...] = get_args(Role)
WORK_ORDER_STATES: tuple[WorkOrderState, ...] = get_args(WorkOrderState)
