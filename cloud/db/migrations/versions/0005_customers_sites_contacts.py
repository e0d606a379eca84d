"""customers, sites and contacts; assets belong to a site; customer tokens; ratings

Existing assets get no site and keep their own `customer_tier` as the tier deadlines use
until they are given a site; no customer is invented for them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 20:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _add_fk_column(table: str, column: str, target: str) -> None:
    """A nullable foreign-key column added in place, on SQLite as on PostgreSQL.

    Never a batch copy (see 0002: copying `assets` would cascade deletes to alerts and
    work orders); SQLite accepts a REFERENCES clause on ADD COLUMN when the column
    defaults to NULL. No ON DELETE action: SQLite's reflection cannot read one back from
    a column clause, and the domain deletes dependants itself.
    """
    name = f"fk_{table}_{column}_{target}"
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} VARCHAR(64) "
            f"CONSTRAINT {name} REFERENCES {target} (id)"
        )
    else:
        op.add_column(table, sa.Column(column, sa.String(length=64), nullable=True))
        op.create_foreign_key(name, table, target, [column], ["id"])


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_sites_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    op.create_index(op.f("ix_sites_customer_id"), "sites", ["customer_id"])
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_contacts_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    op.create_index(op.f("ix_contacts_customer_id"), "contacts", ["customer_id"])

    _add_fk_column("assets", "site_id", "sites")
    op.create_index(op.f("ix_assets_site_id"), "assets", ["site_id"])
    _add_fk_column("api_tokens", "customer_id", "customers")
    op.create_index(op.f("ix_api_tokens_customer_id"), "api_tokens", ["customer_id"])
    op.add_column(
        "dashboard_sessions", sa.Column("customer_id", sa.String(length=64), nullable=True)
    )
    op.add_column("work_orders", sa.Column("satisfaction", sa.Integer(), nullable=True))
    op.add_column("work_orders", sa.Column("feedback", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("work_orders", "feedback")
    op.drop_column("work_orders", "satisfaction")
    op.drop_column("dashboard_sessions", "customer_id")
    for table, column, target in (
        ("api_tokens", "customer_id", "customers"),
        ("assets", "site_id", "sites"),
    ):
        op.drop_index(f"ix_{table}_{column}", table_name=table)
        if op.get_bind().dialect.name != "sqlite":
            op.drop_constraint(f"fk_{table}_{column}_{target}", table, type_="foreignkey")
        op.drop_column(table, column)
    op.drop_index(op.f("ix_contacts_customer_id"), table_name="contacts")
    op.drop_table("contacts")
    op.drop_index(op.f("ix_sites_customer_id"), table_name="sites")
    op.drop_table("sites")
    op.drop_table("customers")
