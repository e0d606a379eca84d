"""Request and response schemas: separate Create / Update / Public models per resource."""

from cloud.api.schemas.alerts import (
    AlertAction,
    AlertEventPublic,
    AlertPublic,
    VerdictCreate,
    VerdictPublic,
)
from cloud.api.schemas.common import Page
from cloud.api.schemas.fleet import (
    AssetCreate,
    AssetPublic,
    AssetUpdate,
    GatewayCreate,
    GatewayCreated,
    GatewayPublic,
    GatewayStatusUpdate,
    MaintenancePlanCreate,
    MaintenancePlanPublic,
    RunningHoursUpdate,
)
from cloud.api.schemas.scoring import (
    AssetScoringPublic,
    FailingAssetPublic,
    ScoringFailurePublic,
    ScoringHealthPublic,
)
from cloud.api.schemas.service import (
    KpisPublic,
    TelemetryCount,
    TelemetryPage,
    TelemetryRow,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    WebhookDeliveryPublic,
)
from cloud.api.schemas.work_orders import (
    EscalationPublic,
    WorkOrderCreate,
    WorkOrderEventPublic,
    WorkOrderPublic,
    WorkOrderTransition,
    WorkOrderUpdate,
)

__all__ = [
    "AlertAction",
    "AlertEventPublic",
    "AlertPublic",
    "AssetCreate",
    "AssetPublic",
    "AssetScoringPublic",
    "AssetUpdate",
    "EscalationPublic",
    "FailingAssetPublic",
    "GatewayCreate",
    "GatewayCreated",
    "GatewayPublic",
    "GatewayStatusUpdate",
    "KpisPublic",
    "MaintenancePlanCreate",
    "MaintenancePlanPublic",
    "Page",
    "RunningHoursUpdate",
    "ScoringFailurePublic",
    "ScoringHealthPublic",
    "TelemetryCount",
    "TelemetryPage",
    "TelemetryRow",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
    "VerdictCreate",
    "VerdictPublic",
    "WebhookDeliveryPublic",
    "WorkOrderCreate",
    "WorkOrderEventPublic",
    "WorkOrderPublic",
    "WorkOrderTransition",
    "WorkOrderUpdate",
]
