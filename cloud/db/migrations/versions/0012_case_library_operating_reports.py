"""fault case library and stored operating reports

Two new tables; nothing existing changes. Cases of work orders closed before this
revision are filled in by the housekeeping loop (cloud.domain.cases.sync_cases).

Revision ID: 0012
Revises: 0006
Create Date: 2026-11-27 21:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fault_cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("asset_name", sa.String(length=200), nullable=False),
        sa.Column("asset_kind", sa.String(length=16), nullable=False),
        sa.Column("failure_mode", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("diagnosis", sa.JSON(), nullable=False),
        sa.Column("signature", sa.JSON(), nullable=False),
        sa.Column("cause_found", sa.Text(), nullable=False),
        sa.Column("action_taken", sa.Text(), nullable=False),
        sa.Column("parts_used", sa.JSON(), nullable=False),
        sa.Column("downtime_h", sa.Float(), nullable=True),
        sa.Column("first_time_fix", sa.Boolean(), nullable=True),
        sa.Column("opened_at", _TIME, nullable=False),
        sa.Column("closed_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_orders.id"],
            name=op.f("fk_fault_cases_work_order_id_work_orders"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fault_cases")),
        sa.UniqueConstraint("work_order_id", name=op.f("uq_fault_cases_work_order_id")),
    )
    for column in ("asset_id", "asset_kind", "failure_mode"):
        op.create_index(op.f(f"ix_fault_cases_{column}"), "fault_cases", [column])
    op.create_table(
        "operating_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("subject_name", sa.String(length=200), nullable=False),
        sa.Column("period_start", _TIME, nullable=False),
        sa.Column("period_end", _TIME, nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("csv", sa.Text(), nullable=False),
        sa.Column("generated_at", _TIME, nullable=False),
        sa.Column("generated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operating_reports")),
        sa.UniqueConstraint(
            "kind", "subject_id", "period_start", name="uq_operating_reports_period"
        ),
    )
    op.create_index(op.f("ix_operating_reports_subject_id"), "operating_reports", ["subject_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_operating_reports_subject_id"), table_name="operating_reports")
    op.drop_table("operating_reports")
    for column in ("asset_id", "asset_kind", "failure_mode"):
        op.drop_index(op.f(f"ix_fault_cases_{column}"), table_name="fault_cases")
    op.drop_table("fault_cases")
