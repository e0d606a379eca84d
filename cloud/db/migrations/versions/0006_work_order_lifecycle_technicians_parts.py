"""work-order lifecycle with outcomes, technicians, spare parts and stock

Revision ID: 0006
Revises: 0008
Create Date: 2026-11-27 20:22:50.747722+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_OPEN = sa.text("state IN ('open', 'assigned', 'in_progress')")
_NEW_OPEN = sa.text("state IN ('open', 'accepted', 'assigned', 'in_progress')")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "parts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parts")),
    )
    op.create_table(
        "technicians",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("failure_modes", sa.JSON(), nullable=False),
        sa.Column("asset_kinds", sa.JSON(), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("calendar", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technicians")),
    )
    op.create_table(
        "warehouses",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warehouses")),
    )
    op.create_table(
        "stock_levels",
        sa.Column("part_id", sa.String(length=64), nullable=False),
        sa.Column("warehouse_id", sa.String(length=64), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("reorder_level", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "reserved >= 0 AND reserved <= on_hand",
            name=op.f("ck_stock_levels_reserved_within_stock"),
        ),
        sa.ForeignKeyConstraint(
            ["part_id"], ["parts.id"], name=op.f("fk_stock_levels_part_id_parts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.id"],
            name=op.f("fk_stock_levels_warehouse_id_warehouses"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("part_id", "warehouse_id", name=op.f("pk_stock_levels")),
    )
    op.create_table(
        "stock_notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("part_id", sa.String(length=64), nullable=False),
        sa.Column("warehouse_id", sa.String(length=64), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reorder_level", sa.Integer(), nullable=False),
        sa.Column("raised_at", _TIME, nullable=False),
        sa.Column("cleared_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["part_id"], ["parts.id"], name=op.f("fk_stock_notices_part_id_parts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.id"],
            name=op.f("fk_stock_notices_warehouse_id_warehouses"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_notices")),
    )
    op.create_index(op.f("ix_stock_notices_part_id"), "stock_notices", ["part_id"])
    op.create_table(
        "part_reservations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("part_id", sa.String(length=64), nullable=False),
        sa.Column("warehouse_id", sa.String(length=64), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["part_id"], ["parts.id"], name=op.f("fk_part_reservations_part_id_parts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.id"],
            name=op.f("fk_part_reservations_warehouse_id_warehouses"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["work_order_id"], ["work_orders.id"],
            name=op.f("fk_part_reservations_work_order_id_work_orders"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_part_reservations")),
    )
    op.create_index(
        op.f("ix_part_reservations_work_order_id"), "part_reservations", ["work_order_id"]
    )

    # SQLite cannot add a foreign key in place: batch mode recreates the table there.
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("technician_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("accepted_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("started_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("cause_found", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("action_taken", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("downtime_h", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("first_time_fix", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("follow_up_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("follow_up_note", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_work_orders_technician_id"), ["technician_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_work_orders_technician_id_technicians"),
            "technicians", ["technician_id"], ["id"], ondelete="SET NULL",
        )
        # `accepted` is an open state: one open work order per (asset, failure mode).
        batch_op.drop_index(
            "uq_work_orders_open_per_mode", sqlite_where=_OLD_OPEN, postgresql_where=_OLD_OPEN
        )
        batch_op.create_index(
            "uq_work_orders_open_per_mode",
            ["asset_id", "failure_mode"],
            unique=True,
            sqlite_where=_NEW_OPEN,
            postgresql_where=_NEW_OPEN,
        )


def downgrade() -> None:
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_work_orders_open_per_mode", sqlite_where=_NEW_OPEN, postgresql_where=_NEW_OPEN
        )
        batch_op.create_index(
            "uq_work_orders_open_per_mode",
            ["asset_id", "failure_mode"],
            unique=True,
            sqlite_where=_OLD_OPEN,
            postgresql_where=_OLD_OPEN,
        )
        batch_op.drop_constraint(
            batch_op.f("fk_work_orders_technician_id_technicians"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_work_orders_technician_id"))
        for column in (
            "follow_up_note", "follow_up_at", "first_time_fix", "downtime_h", "action_taken",
            "cause_found", "started_at", "accepted_at", "technician_id",
        ):
            batch_op.drop_column(column)
    op.drop_index(op.f("ix_part_reservations_work_order_id"), table_name="part_reservations")
    op.drop_table("part_reservations")
    op.drop_index(op.f("ix_stock_notices_part_id"), table_name="stock_notices")
    op.drop_table("stock_notices")
    op.drop_table("stock_levels")
    op.drop_table("warehouses")
    op.drop_table("technicians")
    op.drop_table("parts")
