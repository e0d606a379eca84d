"""running hours from telemetry; maintenance plans by hours and/or calendar, per asset or kind

Existing assets keep their running hours and start accounting telemetry from the next
record; existing plans keep their asset, interval and `last_done_hours` and become P3
plans without tasks or parts of their own (the catalogue's are used).

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-27 21:20:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs on `assets`: never a batch copy (see 0002).
    op.add_column("assets", sa.Column("running_hours_at", sa.DateTime(timezone=True)))
    op.add_column(
        "assets",
        sa.Column(
            "running_hours_running", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    op.add_column("assets", sa.Column("running_hours_per_day", sa.Float()))
    op.add_column("assets", sa.Column("idle_velocity_mms", sa.Float()))
    # Nothing references maintenance_plans yet, so SQLite's table copy is safe here.
    with op.batch_alter_table("maintenance_plans") as batch:
        batch.alter_column("asset_id", existing_type=sa.String(length=64), nullable=True)
        batch.alter_column("interval_hours", existing_type=sa.Float(), nullable=True)
        batch.add_column(sa.Column("asset_kind", sa.String(length=16)))
        batch.add_column(sa.Column("interval_days", sa.Float()))
        batch.add_column(
            sa.Column("priority", sa.String(length=2), nullable=False, server_default="P3")
        )
        batch.add_column(
            sa.Column("tasks", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(
            sa.Column("parts", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    op.create_table(
        "maintenance_dues",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("base_hours", sa.Float(), nullable=False),
        sa.Column("base_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hours_at_open", sa.Float(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"],
            name=op.f("fk_maintenance_dues_asset_id_assets"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["maintenance_plans.id"],
            name=op.f("fk_maintenance_dues_plan_id_maintenance_plans"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["work_order_id"], ["work_orders.id"],
            name=op.f("fk_maintenance_dues_work_order_id_work_orders"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_dues")),
        sa.UniqueConstraint("plan_id", "asset_id", "seq", name="uq_maintenance_dues_point"),
    )
    op.create_index(op.f("ix_maintenance_dues_plan_id"), "maintenance_dues", ["plan_id"])
    op.create_index(op.f("ix_maintenance_dues_asset_id"), "maintenance_dues", ["asset_id"])
    op.create_table(
        "running_hours_adjustments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("total_after", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"],
            name=op.f("fk_running_hours_adjustments_asset_id_assets"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_running_hours_adjustments")),
    )
    op.create_index(
        op.f("ix_running_hours_adjustments_asset_id"), "running_hours_adjustments", ["asset_id"]
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_running_hours_adjustments_asset_id"), table_name="running_hours_adjustments"
    )
    op.drop_table("running_hours_adjustments")
    op.drop_index(op.f("ix_maintenance_dues_asset_id"), table_name="maintenance_dues")
    op.drop_index(op.f("ix_maintenance_dues_plan_id"), table_name="maintenance_dues")
    op.drop_table("maintenance_dues")
    # Plans for a kind, or by calendar only, cannot be expressed in the old schema.
    op.execute(
        "DELETE FROM maintenance_plans WHERE asset_id IS NULL OR interval_hours IS NULL"
    )
    with op.batch_alter_table("maintenance_plans") as batch:
        batch.drop_column("parts")
        batch.drop_column("tasks")
        batch.drop_column("priority")
        batch.drop_column("interval_days")
        batch.drop_column("asset_kind")
        batch.alter_column("interval_hours", existing_type=sa.Float(), nullable=False)
        batch.alter_column("asset_id", existing_type=sa.String(length=64), nullable=False)
    op.drop_column("assets", "idle_velocity_mms")
    op.drop_column("assets", "running_hours_per_day")
    op.drop_column("assets", "running_hours_running")
    op.drop_column("assets", "running_hours_at")
