"""scoring state and leases in the database

Revision ID: 0008
Revises: 0011
Create Date: 2026-11-27 20:45:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scoring_assets",
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=True),
        sa.Column("open_modes", sa.JSON(), nullable=False),
        sa.Column("verdict_rows", sa.JSON(), nullable=False),
        sa.Column("last_verdict_id", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_scoring_assets")),
    )
    op.create_index(op.f("ix_scoring_assets_holder"), "scoring_assets", ["holder"])
    op.create_table(
        "scoring_points",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("cursor_s", sa.Float(), nullable=True),
        sa.Column("commissioned_at_s", sa.Float(), nullable=True),
        sa.Column("raised", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("onset_s", sa.Float(), nullable=True),
        sa.Column("flags_tail", sa.JSON(), nullable=False),
        sa.Column("trend_from_s", sa.Float(), nullable=True),
        sa.Column("baseline_first_s", sa.Float(), nullable=True),
        sa.Column("baseline_last_s", sa.Float(), nullable=True),
        sa.Column("baseline_names", sa.JSON(), nullable=False),
        sa.Column("baseline_rows", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_scoring_points")),
    )
    op.create_index(op.f("ix_scoring_points_asset_id"), "scoring_points", ["asset_id"])
    op.create_table(
        "scoring_workers",
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("seen_until_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("holder", name=op.f("pk_scoring_workers")),
    )
    op.create_table(
        "scoring_meta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("baseline_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_meta")),
    )


def downgrade() -> None:
    op.drop_table("scoring_meta")
    op.drop_table("scoring_workers")
    op.drop_index(op.f("ix_scoring_points_asset_id"), table_name="scoring_points")
    op.drop_table("scoring_points")
    op.drop_index(op.f("ix_scoring_assets_holder"), table_name="scoring_assets")
    op.drop_table("scoring_assets")
