"""escalation ladder, webhook subscriptions, e-mail recipients and outbox

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-27 20:23:01.632820+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "notification_recipients",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_recipients")),
        sa.UniqueConstraint("role", "email", name="uq_notification_recipients_role_email"),
    )
    op.create_index(
        op.f("ix_notification_recipients_role"), "notification_recipients", ["role"]
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("legacy", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _utc("created_at"),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        _utc("updated_at"),
        _utc("secret_rotated_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_index(
        "uq_webhook_subscriptions_legacy",
        "webhook_subscriptions",
        ["legacy"],
        unique=True,
        sqlite_where=sa.text("legacy"),
        postgresql_where=sa.text("legacy"),
    )
    op.create_table(
        "email_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=True),
        sa.Column("work_order_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _utc("created_at"),
        _utc("next_attempt_at"),
        _utc("last_attempt_at", nullable=True),
        _utc("sent_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalations.id"],
            name=op.f("fk_email_deliveries_escalation_id_escalations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_orders.id"],
            name=op.f("fk_email_deliveries_work_order_id_work_orders"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_deliveries")),
    )
    op.create_index("ix_email_deliveries_due", "email_deliveries", ["state", "next_attempt_at"])
    op.create_index(
        op.f("ix_email_deliveries_escalation_id"), "email_deliveries", ["escalation_id"]
    )
    op.create_index(
        op.f("ix_email_deliveries_work_order_id"), "email_deliveries", ["work_order_id"]
    )

    # Rows from before the ladder were raised at the deadline: the supervisor level now.
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.add_column(
            sa.Column(
                "level", sa.String(length=32), server_default="supervisor", nullable=False
            )
        )
        batch_op.drop_constraint("uq_escalations_wo_kind", type_="unique")
        batch_op.create_unique_constraint(
            "uq_escalations_wo_kind_level", ["work_order_id", "kind", "level"]
        )

    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.add_column(sa.Column("subscription_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            op.f("ix_webhook_deliveries_subscription_id"), ["subscription_id"], unique=False
        )
        batch_op.create_foreign_key(
            op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"),
            "webhook_subscriptions",
            ["subscription_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_constraint(
            op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"),
            type_="foreignkey",
        )
        batch_op.drop_index(op.f("ix_webhook_deliveries_subscription_id"))
        batch_op.drop_column("subscription_id")
    # Keeps one row per (work order, kind) so the old constraint holds again.
    op.execute(
        "DELETE FROM escalations WHERE id NOT IN "
        "(SELECT min(id) FROM escalations GROUP BY work_order_id, kind)"
    )
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.drop_constraint("uq_escalations_wo_kind_level", type_="unique")
        batch_op.create_unique_constraint("uq_escalations_wo_kind", ["work_order_id", "kind"])
        batch_op.drop_column("level")
    op.drop_table("email_deliveries")
    op.drop_table("webhook_subscriptions")
    op.drop_index(op.f("ix_notification_recipients_role"), table_name="notification_recipients")
    op.drop_table("notification_recipients")
