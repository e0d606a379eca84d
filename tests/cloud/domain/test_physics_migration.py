"""Migration 0002: flat bearing columns become one physics document, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

from cloud.db import Alert, Asset, make_engine, make_session_factory, upgrade
from cloud.db.migrate import alembic_config
from ironwatch.physics import AssetPhysics

from .conftest import T0

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'ironwatch.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    eng = make_engine(url)
    yield eng
    eng.dispose()


def _asset(asset_id: str, **columns: object) -> dict[str, object]:
    return {"id": asset_id, "gateway_id": "gw-1", "name": asset_id, "kind": "pump",
            "location": "", "shaft_speed_rpm": None, "n_balls": None, "ball_diameter_mm": None,
            "pitch_diameter_mm": None, "contact_angle_deg": None, "iso_group": 2,
            "foundation": "rigid", "customer_tier": "key", "running_hours": 0.0,
            "created_at": T0, "updated_at": T0, **columns}


def _seed_revision_0001(engine: Engine) -> None:
    with engine.begin() as conn:
        meta = sa.MetaData()
        gateways = sa.Table("gateways", meta, autoload_with=conn)
        assets = sa.Table("assets", meta, autoload_with=conn)
        alerts = sa.Table("alerts", meta, autoload_with=conn)
        conn.execute(gateways.insert(), [{"id": "gw-1", "name": "gw-1", "state": "online",
                                          "software_version": "", "status": {},
                                          "created_at": T0}])
        conn.execute(assets.insert(), [
            _asset("full", shaft_speed_rpm=1480.0, n_balls=9, ball_diameter_mm=7.94,
                   pitch_diameter_mm=39.04, contact_angle_deg=0.0, iso_group=1,
                   foundation="flexible"),
            # The old fleet file did not check pitch > ball: such a row must not be lost.
            _asset("bad-bearing", n_balls=9, ball_diameter_mm=40.0, pitch_diameter_mm=39.0),
            _asset("bare"),
        ])
        conn.execute(alerts.insert(), [{
            "asset_id": "full", "failure_mode": "imbalance", "severity": "warning",
            "state": "open", "score": 1.0, "evidence": {}, "model": "m", "model_version": "1",
            "opened_at": T0, "last_seen_at": T0, "absent_rounds": 0, "resolution_note": "",
        }])


def test_flat_columns_become_one_physics_document_and_back(engine: Engine) -> None:
    upgrade(engine, "0001")
    _seed_revision_0001(engine)
    upgrade(engine)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("assets")}
    assert {"physics", "reported_physics", "physics_reported_at"} <= columns
    assert not columns & {"shaft_speed_rpm", "n_balls", "iso_group", "foundation"}
    with make_session_factory(engine)() as session:
        full, bad, bare = (session.get(Asset, a) for a in ("full", "bad-bearing", "bare"))
        assert full is not None and bad is not None and bare is not None
        assert full.physics == AssetPhysics(
            speed_rpm=1480.0, iso_group=1, foundation="flexible",
            points=[{"id": "de", "bearing": {"n_balls": 9, "ball_diameter_mm": 7.94,
                                             "pitch_diameter_mm": 39.04}}],
        )
        assert bad.physics is not None and bad.physics.speed_rpm is None
        (point,) = bad.physics.points
        assert point.bearing is None and "ball 40.0 mm, pitch 39.0 mm" in point.description
        assert bare.physics == AssetPhysics(iso_group=2, foundation="rigid")
        # Columns dropped in place: the asset's alerts are still there (no cascade).
        assert session.scalars(sa.select(Alert.asset_id)).all() == ["full"]

    config = alembic_config()
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
        conn.commit()
        row = conn.execute(sa.text(
            "SELECT shaft_speed_rpm, n_balls, pitch_diameter_mm, iso_group, foundation "
            "FROM assets WHERE id = 'full'"
        )).one()
    assert tuple(row) == (1480.0, 9, 39.04, 1, "flexible")
