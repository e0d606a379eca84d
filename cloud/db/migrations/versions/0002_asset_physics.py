"""asset physics as one JSON document

The flat columns (shaft_speed_rpm, n_balls, ball_diameter_mm, pitch_diameter_mm,
contact_angle_deg, iso_group, foundation) become one `physics` document of the contract
type `ironwatch.physics.AssetPhysics`; `reported_physics` keeps what the asset's gateway
last reported. The old schema had one bearing per asset and no measurement points: it
moves to a point "de" (drive end), where the gateway's own points show any difference.
A bearing the contract refuses (the old fleet file did not check pitch > ball) is kept as
that point's description instead of being dropped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 17:40:00+00:00
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MIGRATED_POINT = "de"
_OLD = ("shaft_speed_rpm", "n_balls", "ball_diameter_mm", "pitch_diameter_mm",
        "contact_angle_deg", "iso_group", "foundation")


def _bearing_ok(n: Any, bd: Any, pd: Any, angle: float) -> bool:
    numbers = all(isinstance(x, int | float) and math.isfinite(x) for x in (bd, pd, angle))
    return isinstance(n, int) and n >= 3 and numbers and 0 < bd < pd and 0 <= angle < 90


def physics_from_columns(row: Any) -> dict[str, Any] | None:
    """The physics document of one old row (None when the row stated nothing)."""
    doc: dict[str, Any] = {}
    if row.shaft_speed_rpm is not None and row.shaft_speed_rpm > 0:
        doc["speed_rpm"] = float(row.shaft_speed_rpm)
    if row.iso_group in (1, 2):
        doc["iso_group"] = int(row.iso_group)
    if row.foundation in ("rigid", "flexible"):
        doc["foundation"] = row.foundation
    if row.n_balls is not None and row.ball_diameter_mm and row.pitch_diameter_mm:
        n, bd, pd = row.n_balls, row.ball_diameter_mm, row.pitch_diameter_mm
        angle = float(row.contact_angle_deg or 0.0)
        point: dict[str, Any] = {"id": MIGRATED_POINT}
        if _bearing_ok(n, bd, pd, angle):
            point["bearing"] = {"n_balls": int(n), "ball_diameter_mm": float(bd),
                                "pitch_diameter_mm": float(pd), "contact_angle_deg": angle}
        else:
            point["description"] = (
                f"bearing refused by the physics check: n_balls={n}, ball {bd} mm, "
                f"pitch {pd} mm, contact angle {angle} deg"
            )[:200]
        doc["points"] = [point]
    return doc or None


# Plain ALTER TABLE (SQLite >= 3.35 drops columns natively), never a batch copy: copying
# `assets` would drop the old table, and with foreign keys on, SQLite would then cascade
# the delete to every alert and work order of the asset.


def upgrade() -> None:
    op.add_column("assets", sa.Column("physics", sa.JSON(), nullable=True))
    op.add_column("assets", sa.Column("reported_physics", sa.JSON(), nullable=True))
    op.add_column(
        "assets", sa.Column("physics_reported_at", sa.DateTime(timezone=True), nullable=True)
    )
    assets = sa.table("assets", sa.column("id", sa.String()), sa.column("physics", sa.JSON()),
                      *(sa.column(c) for c in _OLD))
    bind = op.get_bind()
    for row in bind.execute(sa.select(assets)).all():
        doc = physics_from_columns(row)
        if doc is not None:
            bind.execute(assets.update().where(assets.c.id == row.id).values(physics=doc))
    for column in _OLD:
        op.drop_column("assets", column)


def downgrade() -> None:
    op.add_column("assets", sa.Column("shaft_speed_rpm", sa.Float(), nullable=True))
    op.add_column("assets", sa.Column("n_balls", sa.Integer(), nullable=True))
    op.add_column("assets", sa.Column("ball_diameter_mm", sa.Float(), nullable=True))
    op.add_column("assets", sa.Column("pitch_diameter_mm", sa.Float(), nullable=True))
    op.add_column("assets", sa.Column("contact_angle_deg", sa.Float(), nullable=True))
    # NOT NULL with a server default: SQLite cannot add a NOT NULL column without one, and
    # the default stays (harmless; the ORM of revision 0001 always writes the value).
    op.add_column("assets", sa.Column("iso_group", sa.Integer(), nullable=False,
                                      server_default="2"))
    op.add_column("assets", sa.Column("foundation", sa.String(length=16), nullable=False,
                                      server_default="rigid"))
    assets = sa.table("assets", sa.column("id", sa.String()), sa.column("physics", sa.JSON()),
                      *(sa.column(c) for c in _OLD))
    bind = op.get_bind()
    for row in bind.execute(sa.select(assets.c.id, assets.c.physics)).all():
        doc = row.physics or {}
        bearing: dict[str, Any] = next(
            (p["bearing"] for p in doc.get("points", []) if p.get("bearing")), {}
        )
        bind.execute(assets.update().where(assets.c.id == row.id).values(
            shaft_speed_rpm=doc.get("speed_rpm"),
            iso_group=doc.get("iso_group") or 2,
            foundation=doc.get("foundation") or "rigid",
            n_balls=bearing.get("n_balls"),
            ball_diameter_mm=bearing.get("ball_diameter_mm"),
            pitch_diameter_mm=bearing.get("pitch_diameter_mm"),
            contact_angle_deg=bearing.get("contact_angle_deg"),
        ))
    for column in ("physics_reported_at", "reported_physics", "physics"):
        op.drop_column("assets", column)
