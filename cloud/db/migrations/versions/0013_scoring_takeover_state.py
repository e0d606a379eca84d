"""the protection rules' readings and pending snapshot requests in the scoring state

Two columns on `scoring_points` (empty for existing rows: the rules start afresh once,
as they did before) and a new table; nothing else changes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 23:40:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name in ("protect_velocity_mms", "protect_temperature_c"):
        op.add_column(
            "scoring_points",
            sa.Column(name, sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
        )
    op.create_table(
        "scoring_snapshot_requests",
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("point", sa.String(length=64), nullable=False),
        sa.Column("command_id", sa.String(length=64), nullable=True),
        sa.Column("asked_at_s", sa.Float(), nullable=True),
        sa.Column("waiting_since_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_scoring_snapshot_requests")),
    )


def downgrade() -> None:
    op.drop_table("scoring_snapshot_requests")
    with op.batch_alter_table("scoring_points") as batch:
        batch.drop_column("protect_temperature_c")
        batch.drop_column("protect_velocity_mms")
