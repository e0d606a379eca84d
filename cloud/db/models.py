"""SQLAlchemy 2 models: fleet, alerts, work orders and their history, tokens, outbox.

Times are stored timezone-aware and always read back as UTC (see `UtcDateTime`).
Choice-valued columns are short strings checked by the domain layer, so adding a
state is a code change, not a migration on every deployment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from ironwatch.physics import AssetPhysics

__all__ = [
    "OPEN_ALERT_STATES",
    "OPEN_WORK_ORDER_STATES",
    "Alert",
    "AlertEvent",
    "ApiToken",
    "Asset",
    "Base",
    "Contact",
    "Customer",
    "DashboardSession",
    "DeadLetterRow",
    "EmailDelivery",
    "Escalation",
    "FaultCase",
    "Gateway",
    "GatewayEvent",
    "MaintenanceDue",
    "MaintenancePlan",
    "NotificationRecipient",
    "OperatingReport",
    "Part",
    "PartReservation",
    "PhysicsJson",
    "RunningHoursAdjustment",
    "ScoringAsset",
    "ScoringMeta",
    "ScoringPoint",
    "ScoringWorker",
    "Site",
    "StockLevel",
    "StockNotice",
    "Technician",
    "UtcDateTime",
    "Verdict",
    "Warehouse",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkOrder",
    "WorkOrderEvent",
    "check_timezone",
]

# States in which an alert / work order is still "the" open one for its (asset, failure mode).
OPEN_ALERT_STATES = ("open", "acknowledged")
OPEN_WORK_ORDER_STATES = ("open", "accepted", "assigned", "in_progress")
_OPEN_WO_SQL = "state IN ('open', 'accepted', 'assigned', 'in_progress')"

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime that refuses naive input and reads back as UTC.

    SQLite drops the offset; PostgreSQL keeps it. Both come back as UTC-aware here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Ironwatch stores timezone-aware UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class PhysicsJson(TypeDecorator[AssetPhysics]):
    """An asset's physics as one JSON document, validated through the contract type.

    Written from and read back as `ironwatch.physics.AssetPhysics`, so a row can hold
    only physics the type accepts; a new field of the type needs no new column.
    """

    impl = JSON()
    cache_ok = True

    def process_bind_param(
        self, value: AssetPhysics | dict[str, Any] | None, dialect: Dialect
    ) -> dict[str, Any] | None:
        if value is None:
            return None
        return AssetPhysics.model_validate(value).model_dump(mode="json", exclude_none=True)

    def process_result_value(self, value: Any, dialect: Dialect) -> AssetPhysics | None:
        return None if value is None else AssetPhysics.model_validate(value)


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with the naming convention and JSON for dict columns."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - SQLAlchemy reads it once
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


# Full-text search (cloud.domain.search) matches substrings with ILIKE, which works for
# Chinese text without a word splitter. On PostgreSQL the searched columns carry trigram
# GIN indexes (pg_trgm) so that stays indexed; on SQLite they are plain indexes.
event.listen(
    Base.metadata,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(  # type: ignore[no-untyped-call]
        dialect="postgresql"
    ),
)


def trigram_index(table: str, column: str) -> Index:
    """An index that makes `column ILIKE '%term%'` indexed on PostgreSQL."""
    return Index(
        f"ix_{table}_{column}_trgm",
        column,
        postgresql_using="gin",
        postgresql_ops={column: "gin_trgm_ops"},
    )


class Gateway(Base):
    """An edge gateway: identity, credentials and its last reported status."""

    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    credentials_hash: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    last_seen: Mapped[datetime | None]
    # Gateway sequence numbers outgrow 32 bits on a long-lived gateway.
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    software_version: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=_now)

    assets: Mapped[list[Asset]] = relationship(back_populates="gateway")


class Asset(Base):
    """A rotating machine with the physics diagnosis and severity need."""

    __tablename__ = "assets"
    __table_args__ = (trigram_index("assets", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway_id: Mapped[str | None] = mapped_column(
        ForeignKey("gateways.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(16), default="motor")
    location: Mapped[str] = mapped_column(String(200), default="")
    # The cloud's copy (fleet file, API, or learned from the gateway's birth message) ...
    physics: Mapped[AssetPhysics | None] = mapped_column(PhysicsJson())
    # ... and what the asset's gateway last said, kept to show where the two disagree.
    reported_physics: Mapped[AssetPhysics | None] = mapped_column(PhysicsJson())
    physics_reported_at: Mapped[datetime | None]
    # The site (and through it the customer and its tier) that owns the asset; None for
    # assets registered before customers existed, which keep `customer_tier` below.
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), index=True)
    # Fallback tier of an asset without a site; a site's customer's tier wins (`tier`).
    customer_tier: Mapped[str] = mapped_column(String(16), default="standard")
    running_hours: Mapped[float] = mapped_column(Float, default=0.0)
    # Running hours from telemetry (cloud.domain.hour_meter): the capture time accounted
    # up to, whether the machine ran then, and the recent rate in hours per day.
    running_hours_at: Mapped[datetime | None]
    running_hours_running: Mapped[bool] = mapped_column(
        default=False, server_default=text("false")
    )
    running_hours_per_day: Mapped[float | None] = mapped_column(Float)
    # Velocity (mm/s RMS) above which a record without a speed means running; None: a
    # quarter of the ISO 10816-3 zone A/B boundary of the asset's class.
    idle_velocity_mms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)

    gateway: Mapped[Gateway | None] = relationship(back_populates="assets")
    site: Mapped[Site | None] = relationship(back_populates="assets")

    @property
    def customer(self) -> Customer | None:
        """The customer owning the asset's site, or None for an asset without a site."""
        return None if self.site is None else self.site.customer

    @property
    def customer_id(self) -> str | None:
        """The id of the customer owning the asset, or None for an asset without a site."""
        return None if self.site is None else self.site.customer_id

    @property
    def tier(self) -> str:
        """The service tier deadlines use: the customer's, else the asset's own fallback."""
        customer = self.customer
        return self.customer_tier if customer is None else customer.tier

    @validates("physics", "reported_physics")
    def _physics_type(self, _key: str, value: AssetPhysics | dict[str, Any] | None) -> Any:
        # Validated on assignment, so a bad document fails where it is set, not at flush.
        return None if value is None else AssetPhysics.model_validate(value)


class Alert(Base):
    """A detected condition on one asset; at most one open per (asset, failure mode)."""

    __tablename__ = "alerts"
    __table_args__ = (
        # The invariant lives in the database too, so two scoring workers cannot race past it.
        Index(
            "uq_alerts_open_per_mode",
            "asset_id",
            "failure_mode",
            unique=True,
            sqlite_where=text("state IN ('open', 'acknowledged')"),
            postgresql_where=text("state IN ('open', 'acknowledged')"),
        ),
        trigram_index("alerts", "failure_mode"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    failure_mode: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    score: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    iso_zone: Mapped[str | None] = mapped_column(String(1))
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(100))
    rul_low_h: Mapped[float | None] = mapped_column(Float)
    rul_median_h: Mapped[float | None] = mapped_column(Float)
    rul_high_h: Mapped[float | None] = mapped_column(Float)
    opened_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # Hysteresis: consecutive scoring rounds without the condition, and since when.
    absent_rounds: Mapped[int] = mapped_column(Integer, default=0)
    absent_since: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolution_note: Mapped[str] = mapped_column(Text, default="")

    asset: Mapped[Asset] = relationship()
    events: Mapped[list[AlertEvent]] = relationship(
        back_populates="alert", order_by="AlertEvent.id", cascade="all, delete-orphan"
    )


class AlertEvent(Base):
    """One entry in an alert's history: opened, evidence, escalated, acknowledged, ..."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    actor: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    alert: Mapped[Alert] = relationship(back_populates="events")


class WorkOrder(Base):
    """A preventive-maintenance job with priority, deadlines and a state machine."""

    __tablename__ = "work_orders"
    __table_args__ = (
        Index(
            "uq_work_orders_open_per_mode",
            "asset_id",
            "failure_mode",
            unique=True,
            sqlite_where=text(_OPEN_WO_SQL),
            postgresql_where=text(_OPEN_WO_SQL),
        ),
        trigram_index("work_orders", "title"),
        trigram_index("work_orders", "failure_mode"),
        trigram_index("work_orders", "assignee"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(16), default="alert")
    failure_mode: Mapped[str] = mapped_column(String(64))
    failure_mode_code: Mapped[str] = mapped_column(String(16), default="")
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(2), index=True)
    priority_reason: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    assignee: Mapped[str | None] = mapped_column(String(100))
    suggested_actions: Mapped[list[Any]] = mapped_column(default=list)
    spare_parts: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    respond_by: Mapped[datetime]
    resolve_by: Mapped[datetime]
    planned_for: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    failure_confirmed_at: Mapped[datetime | None]
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    # The customer's rating of the finished job: 1-5 and a free comment.
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    feedback: Mapped[str | None] = mapped_column(Text)
    # Lifecycle steps and the outcome (all nullable: rows from before them migrate as-is).
    technician_id: Mapped[int | None] = mapped_column(
        ForeignKey("technicians.id", ondelete="SET NULL"), index=True
    )
    accepted_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    cause_found: Mapped[str | None] = mapped_column(Text)
    action_taken: Mapped[str | None] = mapped_column(Text)
    downtime_h: Mapped[float | None] = mapped_column(Float)
    first_time_fix: Mapped[bool | None]
    follow_up_at: Mapped[datetime | None]
    follow_up_note: Mapped[str | None] = mapped_column(Text)

    asset: Mapped[Asset] = relationship()
    alert: Mapped[Alert | None] = relationship()
    technician: Mapped[Technician | None] = relationship()
    parts: Mapped[list[PartReservation]] = relationship(
        back_populates="work_order", order_by="PartReservation.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[WorkOrderEvent]] = relationship(
        back_populates="work_order", order_by="WorkOrderEvent.id", cascade="all, delete-orphan"
    )


class WorkOrderEvent(Base):
    """One entry in a work order's history: a transition, an edit or an escalation."""

    __tablename__ = "work_order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100), default="system")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    work_order: Mapped[WorkOrder] = relationship(back_populates="events")


class Verdict(Base):
    """A human judgement on an alert (false alarm, confirmed) that model training consumes."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL"), index=True
    )
    work_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL")
    )
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    failure_mode: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    # The failure mode the engineer found instead of the alert's, if they corrected it.
    corrected_failure_mode: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(100))
    model_version: Mapped[str | None] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class ApiToken(Base):
    """An API token, stored as a SHA-256 digest; the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    gateway_id: Mapped[str | None] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"))
    # A customer token sees that customer's machines only. No ON DELETE: deleting a
    # customer deletes its tokens first (cloud.domain.customers), in one transaction.
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """The webhook outbox: written with the change it reports, sent later, logged per attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(64))
    work_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL"), index=True
    )
    # The subscription this copy of the event goes to; None only on rows older than
    # subscriptions, which are adopted by the legacy subscription or skipped at start-up.
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="SET NULL"), index=True
    )
    # The exact bytes that are signed and sent: re-serialising could change the signature.
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)


class Escalation(Base):
    """One level of the escalation ladder reached for a response or resolution deadline.

    Unique per (work order, kind, level): a level fires once, however often (and in however
    many processes) the check runs.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("work_order_id", "kind", "level", name="uq_escalations_wo_kind_level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    # The ladder level's name (warning, supervisor, manager, ...); rows from before the
    # ladder were raised at the deadline, which is the supervisor level now.
    level: Mapped[str] = mapped_column(String(32), server_default="supervisor")
    due_at: Mapped[datetime]
    raised_at: Mapped[datetime]
    priority: Mapped[str] = mapped_column(String(2))
    notified_to: Mapped[str] = mapped_column(String(200), default="")
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))


class MaintenancePlan(Base):
    """Preventive maintenance every `interval_hours` of operation and/or `interval_days`,
    whichever comes first, for one asset or for every asset of a kind."""

    __tablename__ = "maintenance_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Exactly one of asset_id / asset_kind is set (checked by cloud.domain.reminders).
    asset_id: Mapped[str | None] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), index=True
    )
    asset_kind: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(64), default="scheduled_service")
    interval_hours: Mapped[float | None] = mapped_column(Float)
    interval_days: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[str] = mapped_column(String(2), default="P3", server_default="P3")
    # Copied onto each work order the plan opens (instead of the catalogue's).
    tasks: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))
    parts: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))
    last_done_hours: Mapped[float] = mapped_column(Float, default=0.0)
    last_work_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class GatewayEvent(Base):
    """Something about a gateway an operator should see: e.g. a new outbox epoch."""

    __tablename__ = "gateway_events"
    __table_args__ = (Index("ix_gateway_events_gateway_at", "gateway_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DeadLetterRow(Base):
    """A message or record the ingestion refused, with its reason and the payload's start.

    Bounded: the ingestion keeps the newest N rows (see cloud.domain.deadletters).
    """

    __tablename__ = "dead_letters"
    __table_args__ = (
        Index("ix_dead_letters_gateway_id", "gateway_id", "id"),
        Index("ix_dead_letters_reason_code", "reason_code", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime]
    topic: Mapped[str] = mapped_column(String(1024))
    gateway_id: Mapped[str | None] = mapped_column(String(64))
    epoch: Mapped[str | None] = mapped_column(String(32))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    reason_code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    payload_size: Mapped[int] = mapped_column(Integer)


class DashboardSession(Base):
    """A browser signed in to the dashboard. The cookie holds a random secret; this row
    keeps only its SHA-256, so a copy of the database does not sign anyone in."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The API token used to sign in; revoking it ends its sessions. None: the bootstrap admin.
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    # The customer a customer-role session is bound to, copied from its token (which the
    # session dies with, so no foreign key of its own).
    customer_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]


def check_timezone(name: str) -> str:
    """Return an IANA time-zone name if zoneinfo knows it, else raise ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(
            f"unknown time zone {name!r}: give an IANA name like Europe/Berlin"
        ) from err
    return name


class Customer(Base):
    """A customer of the service organisation; its tier tightens response deadlines."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(16), default="standard")
    created_at: Mapped[datetime] = mapped_column(default=_now)

    sites: Mapped[list[Site]] = relationship(
        back_populates="customer", order_by="Site.id", cascade="all, delete-orphan"
    )
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="customer", order_by="Contact.id", cascade="all, delete-orphan"
    )


class Site(Base):
    """A plant of a customer, in one time zone; assets belong to a site."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(64), default="")
    # IANA name (Europe/Berlin); local times of the site's assets are shown in it.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    address: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=_now)

    customer: Mapped[Customer] = relationship(back_populates="sites")
    assets: Mapped[list[Asset]] = relationship(back_populates="site")

    @validates("timezone")
    def _known_timezone(self, _key: str, value: str) -> str:
        return check_timezone(value)


class Contact(Base):
    """A person at a customer: plant manager, maintenance lead, ..."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(default=_now)

    customer: Mapped[Customer] = relationship(back_populates="contacts")


class WebhookSubscription(Base):
    """A receiver of webhook events: URL, event filter and its own signing secret.

    The secret is kept as is because signing needs it; it is shown once over the API.
    """

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        # One legacy subscription, even when several processes start at once.
        Index(
            "uq_webhook_subscriptions_legacy",
            "legacy",
            unique=True,
            sqlite_where=text("legacy"),
            postgresql_where=text("legacy"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    # Event types or patterns: "work_order.*", "alert.opened", "*".
    events: Mapped[list[Any]] = mapped_column(default=list)
    secret: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(default=True)
    # The subscription made from the settings file's webhook_url (kept in step with it).
    legacy: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    updated_at: Mapped[datetime]
    secret_rotated_at: Mapped[datetime | None]


class NotificationRecipient(Base):
    """An e-mail address that receives the notifications sent to a role (supervisor, ...)."""

    __tablename__ = "notification_recipients"
    __table_args__ = (
        UniqueConstraint("role", "email", name="uq_notification_recipients_role_email"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    role: Mapped[str] = mapped_column(String(32), index=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class EmailDelivery(Base):
    """The e-mail outbox: one message to one address, written with the escalation it reports."""

    __tablename__ = "email_deliveries"
    __table_args__ = (Index("ix_email_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    escalation_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalations.id", ondelete="SET NULL"), index=True
    )
    work_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL"), index=True
    )
    # The internal role, or "customer:<contact role>" for a customer's contact.
    role: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class MaintenanceDue(Base):
    """A due point of a plan on an asset that opened a work order; `seq` counts them.

    Unique per (plan, asset, seq): two processes checking the plans at once cannot both
    open the same due point's work order.
    """

    __tablename__ = "maintenance_dues"
    __table_args__ = (
        UniqueConstraint("plan_id", "asset_id", "seq", name="uq_maintenance_dues_point"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(
        ForeignKey("maintenance_plans.id", ondelete="CASCADE"), index=True
    )
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    # What fell due: "hours" or "calendar"; the next due point counts from these two.
    reason: Mapped[str] = mapped_column(String(16))
    base_hours: Mapped[float] = mapped_column(Float)
    base_at: Mapped[datetime]
    hours_at_open: Mapped[float] = mapped_column(Float)
    opened_at: Mapped[datetime]
    work_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL")
    )


class RunningHoursAdjustment(Base):
    """A running-hours correction typed in by a person, kept as the asset's history."""

    __tablename__ = "running_hours_adjustments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    hours: Mapped[float] = mapped_column(Float)
    total_after: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")


class ScoringAsset(Base):
    """One asset's scoring state beyond its points, and which worker scores it.

    The asset is `holder`'s while that worker's lease (`scoring_workers`) is unexpired;
    after that another worker takes it over and resumes from the state rows saved here
    and in `scoring_points`.
    """

    __tablename__ = "scoring_assets"

    asset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100), index=True)
    # Failure modes with an open condition raised by scoring; verdict rows replayed on refits.
    open_modes: Mapped[list[Any]] = mapped_column(default=list)
    verdict_rows: Mapped[list[Any]] = mapped_column(default=list)
    last_verdict_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ScoringPoint(Base):
    """Scoring state of one (asset, point): read cursor, commissioning baseline, persistence.

    Written per round only for the points that round read; the baseline matrix (float64,
    little-endian, one row per commissioning window) only while the point commissions.
    """

    __tablename__ = "scoring_points"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    asset_id: Mapped[str] = mapped_column(String(64), index=True)
    cursor_s: Mapped[float | None] = mapped_column(Float)
    commissioned_at_s: Mapped[float | None] = mapped_column(Float)
    raised: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    onset_s: Mapped[float | None] = mapped_column(Float)
    flags_tail: Mapped[list[Any]] = mapped_column(default=list)
    # Capture time of the oldest row of the point's RUL feature history (rebuilt from the
    # telemetry store after a restart or a takeover, so histories are never rewritten here).
    trend_from_s: Mapped[float | None] = mapped_column(Float)
    baseline_first_s: Mapped[float | None] = mapped_column(Float)
    baseline_last_s: Mapped[float | None] = mapped_column(Float)
    baseline_names: Mapped[list[Any]] = mapped_column(default=list)
    baseline_rows: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The protection rules' last few readings (`PointReadings`), so a worker that takes
    # the point over, or a restart, decides on the same readings as before.
    protect_velocity_mms: Mapped[list[Any]] = mapped_column(
        default=list, server_default=text("'[]'")
    )
    protect_temperature_c: Mapped[list[Any]] = mapped_column(
        default=list, server_default=text("'[]'")
    )


class ScoringWorker(Base):
    """A scoring worker's lease, renewed every round until `seen_until_s` (epoch seconds,
    wall clock): it holds its assets while unexpired, and the live workers' count sets
    each one's share of the fleet."""

    __tablename__ = "scoring_workers"

    holder: Mapped[str] = mapped_column(String(100), primary_key=True)
    seen_until_s: Mapped[float] = mapped_column(Float)


class ScoringMeta(Base):
    """Fleet-wide scoring counters (one row): the commissioning baseline version."""

    __tablename__ = "scoring_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    baseline_version: Mapped[int] = mapped_column(Integer, default=0)


class Technician(Base):
    """A field service technician: skills, region and working calendar, for dispatch."""

    __tablename__ = "technicians"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    # Failure modes (catalogue ids) and asset kinds the technician can handle.
    failure_modes: Mapped[list[Any]] = mapped_column(default=list)
    asset_kinds: Mapped[list[Any]] = mapped_column(default=list)
    region: Mapped[str] = mapped_column(String(64), default="")
    # {"timezone": "Europe/Berlin", "weekly": {"mon": ["08:00", "17:00"], ...},
    #  "days_off": ["2026-12-24", ...]}; validated by cloud.domain.technicians.
    calendar: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)


class Warehouse(Base):
    """A store of spare parts."""

    __tablename__ = "warehouses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    region: Mapped[str] = mapped_column(String(64), default="")


class Part(Base):
    """A spare part in the catalogue, by part number."""

    __tablename__ = "parts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(16), default="pcs")


class StockLevel(Base):
    """How many of a part a warehouse holds and how many are promised to work orders.

    The check constraint is the last guard against overselling: reservations are
    conditional updates (`reserved + n <= on_hand`), so two at once cannot both pass.
    """

    __tablename__ = "stock_levels"
    __table_args__ = (
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_stock"),
    )

    part_id: Mapped[str] = mapped_column(
        ForeignKey("parts.id", ondelete="CASCADE"), primary_key=True
    )
    warehouse_id: Mapped[str] = mapped_column(
        ForeignKey("warehouses.id", ondelete="CASCADE"), primary_key=True
    )
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    reorder_level: Mapped[int] = mapped_column(Integer, default=0)


class PartReservation(Base):
    """A part a work order needs: reserved from a warehouse, short, used or released."""

    __tablename__ = "part_reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"), index=True
    )
    part_id: Mapped[str] = mapped_column(ForeignKey("parts.id", ondelete="CASCADE"))
    warehouse_id: Mapped[str | None] = mapped_column(
        ForeignKey("warehouses.id", ondelete="SET NULL")
    )
    quantity: Mapped[int] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer, default=0)
    # reserved | short | used | released
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    work_order: Mapped[WorkOrder] = relationship(back_populates="parts")


class StockNotice(Base):
    """Stock of a part in a warehouse fell below its reorder level; cleared when refilled."""

    __tablename__ = "stock_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    part_id: Mapped[str] = mapped_column(ForeignKey("parts.id", ondelete="CASCADE"), index=True)
    warehouse_id: Mapped[str] = mapped_column(ForeignKey("warehouses.id", ondelete="CASCADE"))
    on_hand: Mapped[int] = mapped_column(Integer)
    reorder_level: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]


class FaultCase(Base):
    """A closed work order with a confirmed cause, kept as a case to learn from.

    A copy, not a view: the symptoms (the alert's evidence and diagnosis), what was found
    and done are frozen when the work order closes, so the case reads the same after the
    alert or work order change. `signature` is the evidence as numbers (feature z-scores,
    defect-line ratios) that similarity compares (cloud.domain.cases).
    """

    __tablename__ = "fault_cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL"), unique=True
    )
    alert_id: Mapped[int | None] = mapped_column(Integer)
    asset_id: Mapped[str] = mapped_column(String(64), index=True)
    asset_name: Mapped[str] = mapped_column(String(200), default="")
    asset_kind: Mapped[str] = mapped_column(String(16), index=True)
    failure_mode: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    diagnosis: Mapped[dict[str, Any]] = mapped_column(default=dict)
    signature: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cause_found: Mapped[str] = mapped_column(Text, default="")
    action_taken: Mapped[str] = mapped_column(Text, default="")
    parts_used: Mapped[dict[str, Any]] = mapped_column(default=dict)
    downtime_h: Mapped[float | None] = mapped_column(Float)
    first_time_fix: Mapped[bool | None]
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=_now)


class OperatingReport(Base):
    """A generated operating report of one asset or customer for one period (HTML + CSV).

    One per (kind, subject, period start): the monthly job regenerates nothing it already
    stored, so running it twice is harmless.
    """

    __tablename__ = "operating_reports"
    __table_args__ = (
        UniqueConstraint("kind", "subject_id", "period_start", name="uq_operating_reports_period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    subject_name: Mapped[str] = mapped_column(String(200), default="")
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    locale: Mapped[str] = mapped_column(String(16), default="en")
    html: Mapped[str] = mapped_column(Text)
    csv: Mapped[str] = mapped_column(Text)
    generated_at: Mapped[datetime]
    generated_by: Mapped[str] = mapped_column(String(100), default="schedule")


class ScoringSnapshotRequest(Base):
    """The waveform snapshot scoring last asked an asset's gateway for, and a new alert
    held for it: a worker that takes the asset over neither asks again while the request
    is fresh nor restarts the wait. Written only when scoring asks or a wait ends."""

    __tablename__ = "scoring_snapshot_requests"

    asset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    point: Mapped[str] = mapped_column(String(64))
    command_id: Mapped[str | None] = mapped_column(String(64))
    # Round times (epoch seconds): when it was asked for, and since when an alert waits.
    asked_at_s: Mapped[float | None] = mapped_column(Float)
    waiting_since_s: Mapped[float | None] = mapped_column(Float)
