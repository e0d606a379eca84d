"""verdict failure-mode correction; trigram indexes for search

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-27 20:40:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column): the columns cloud.domain.search matches with ILIKE.
SEARCHED = (
    ("assets", "name"),
    ("alerts", "failure_mode"),
    ("work_orders", "title"),
    ("work_orders", "failure_mode"),
    ("work_orders", "assignee"),
)


def upgrade() -> None:
    with op.batch_alter_table("verdicts") as batch:
        batch.add_column(sa.Column("corrected_failure_mode", sa.String(length=64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # A trusted extension since PostgreSQL 13: the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column in SEARCHED:
        op.create_index(
            f"ix_{table}_{column}_trgm",
            table,
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )


def downgrade() -> None:
    for table, column in SEARCHED:
        op.drop_index(f"ix_{table}_{column}_trgm", table_name=table)
    with op.batch_alter_table("verdicts") as batch:
        batch.drop_column("corrected_failure_mode")
