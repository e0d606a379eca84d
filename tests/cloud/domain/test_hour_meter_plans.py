"""Running hours on the assets' rows and maintenance plans, on SQLite and a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from cloud.db import (
    Asset,
    MaintenanceDue,
    MaintenancePlan,
    RunningHoursAdjustment,
    SessionFactory,
    WorkOrder,
    make_engine,
    make_session_factory,
    upgrade,
)
from cloud.db.migrate import alembic_config
from cloud.domain import seed_fleet, transition
from cloud.domain.errors import InvalidInputError
from cloud.domain.hour_meter import adjust_running_hours, idle_velocity_mms, record_running_hours
from cloud.domain.maintenance_calendar import planned_services
from cloud.domain.reminders import check_maintenance_plans, create_plan, update_plan

from .conftest import FLEET, T0

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SessionFactory]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'ironwatch.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine: Engine = make_engine(url)
    upgrade(engine)
    made = make_session_factory(engine)
    with made() as session:
        seed_fleet(session, FLEET)
        session.commit()
    yield made
    engine.dispose()


def _feed(session: Session, asset: str, ts_s: np.ndarray, *, speed: float = float("nan"),
          velocity: float = float("nan")) -> float:
    out = record_running_hours(
        session, asset_ids=np.full(len(ts_s), asset), ts_s=ts_s,
        speed_rpm=np.full(len(ts_s), speed), velocity_rms_mms=np.full(len(ts_s), velocity),
    )
    session.commit()
    return out.hours_added


def test_counters_advance_only_past_the_accounted_time(factory: SessionFactory) -> None:
    t0 = T0.timestamp()
    with factory() as session:
        assert _feed(session, "pump-1", t0 + np.arange(0, 3601, 60.0), speed=1480) == (
            pytest.approx(1.0)
        )
        # Replayed: nothing; idle by speed: nothing; running by vibration only: counted.
        assert _feed(session, "pump-1", t0 + np.arange(0, 3601, 60.0), speed=1480) == 0
        asset = session.get(Asset, "pump-1")
        assert asset is not None
        assert asset.running_hours == pytest.approx(1.0)
        assert asset.running_hours_at == T0 + timedelta(hours=1)
        assert _feed(session, "pump-1", t0 + 3600 + np.arange(60, 3601, 60.0),
                     speed=0.0, velocity=5.0) == 0
        assert idle_velocity_mms(asset) == pytest.approx(0.35)  # a quarter of 1.4 mm/s
        assert _feed(session, "pump-1", t0 + 7200 + np.arange(60, 1801, 60.0),
                     velocity=0.2) == 0  # below the idle level
        assert _feed(session, "pump-1", t0 + 9000 + np.arange(60, 1801, 60.0),
                     velocity=1.2) == pytest.approx(0.5 - 1 / 60)
        # A silent hour earns nothing, whatever the records on both sides say.
        assert _feed(session, "pump-1", t0 + 14400 + np.arange(0, 601, 60.0),
                     speed=1480) == pytest.approx(600 / 3600)
        session.refresh(asset)
        assert asset.running_hours == pytest.approx(1.5 - 1 / 60 + 1 / 6)
        assert asset.running_hours_per_day is not None and asset.running_hours_per_day > 0
        # A manual adjustment adds on top and is kept in the history.
        adjust_running_hours(session, "pump-1", 10, now=T0, actor="admin", note="old counter")
        session.commit()
        (adj,) = session.scalars(select(RunningHoursAdjustment)).all()
        assert (adj.hours, adj.actor, adj.total_after) == (10, "admin", asset.running_hours)
        with pytest.raises(InvalidInputError):
            adjust_running_hours(session, "pump-1", -1e6, now=T0, actor="admin")
        # Records of an unknown asset are skipped; the others still count.
        out = record_running_hours(
            session, asset_ids=np.array(["ghost", "fan-1", "fan-1"]),
            ts_s=np.array([t0, t0, t0 + 60]), speed_rpm=np.array([1.0, 1.0, 1.0]),
            velocity_rms_mms=np.full(3, np.nan),
        )
        assert out.assets == 1
        assert out.hours_added == pytest.approx(60 / 3600)


def test_plans_by_hours_or_calendar_per_asset_or_kind(factory: SessionFactory) -> None:
    with factory() as session:
        by_hours = create_plan(session, asset_id="pump-1", interval_hours=500,
                               priority="P2", tasks=["Grease bearings"], parts=["grease 400 g"],
                               now=T0)
        by_kind = create_plan(session, asset_kind="fan", interval_days=90, task="inspection",
                              now=T0)
        session.commit()
        pump = session.get(Asset, "pump-1")
        assert pump is not None
        pump.running_hours = 499.0
        pump.running_hours_per_day = 20.0
        session.commit()
        assert check_maintenance_plans(session, T0 + timedelta(days=1)) == []
        calendar = {(s.plan_id, s.asset_id): s for s in planned_services(session, T0)}
        assert set(calendar) == {(by_hours.id, "pump-1"), (by_kind.id, "fan-1")}
        assert calendar[by_hours.id, "pump-1"].due_by_hours_at == T0 + timedelta(hours=1.2)
        assert calendar[by_kind.id, "fan-1"].due_at == T0 + timedelta(days=90)

        pump.running_hours = 502.0
        session.commit()
        (wo,) = check_maintenance_plans(session, T0 + timedelta(days=2))
        assert (wo.priority, wo.source, wo.failure_mode) == ("P2", "reminder", "scheduled_service")
        assert (wo.suggested_actions, wo.spare_parts) == (["Grease bearings"], ["grease 400 g"])
        assert check_maintenance_plans(session, T0 + timedelta(days=2)) == []  # once
        session.commit()

        (fan_wo,) = check_maintenance_plans(session, T0 + timedelta(days=91))
        assert (fan_wo.asset_id, fan_wo.failure_mode) == ("fan-1", "inspection")
        assert "calendar" in fan_wo.priority_reason
        session.commit()
        # The fan's next one counts from the due date, not from when it was noticed.
        nxt = {(s.plan_id, s.asset_id): s for s in planned_services(session, T0)}
        assert nxt[by_kind.id, "fan-1"].due_at == T0 + timedelta(days=180)
        assert nxt[by_hours.id, "pump-1"].due_hours == 1000.0

        # A paused plan opens nothing; intervals are checked.
        update_plan(session, by_hours.id, {"active": False})
        transition(session, wo.id, "in_progress", actor="d", now=T0 + timedelta(days=3))
        transition(session, wo.id, "done", actor="d", now=T0 + timedelta(days=3))
        pump.running_hours = 2000.0
        session.commit()
        assert check_maintenance_plans(session, T0 + timedelta(days=4)) == []
        with pytest.raises(InvalidInputError):
            update_plan(session, by_hours.id, {"interval_hours": None})
        session.rollback()


def test_two_processes_open_a_due_point_once(factory: SessionFactory) -> None:
    with factory() as session:
        create_plan(session, asset_id="pump-1", interval_hours=100, now=T0)
        asset = session.get(Asset, "pump-1")
        assert asset is not None
        asset.running_hours = 150.0
        session.commit()
    barrier = threading.Barrier(2)
    opened: list[int] = []
    errors: list[BaseException] = []

    def check() -> None:
        try:
            with factory() as s:
                barrier.wait(5)
                found = check_maintenance_plans(s, T0 + timedelta(hours=1))
                s.commit()
                opened.extend(w.id for w in found)
        except Exception as err:  # a lost race may also surface at commit
            errors.append(err)

    threads = [threading.Thread(target=check) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with factory() as session:
        assert len(session.scalars(select(WorkOrder)).all()) == 1
        assert len(session.scalars(select(MaintenanceDue)).all()) == 1
    # One of the two opened it; the other found it done (or, on SQLite, lost the lock).
    assert len(opened) == 1 and len(errors) <= 1


def test_migration_0011_downgrades_and_upgrades_again_keeping_plans_and_hours(
    factory: SessionFactory,
) -> None:
    engine: Engine = factory.kw["bind"]
    with factory() as session:
        create_plan(session, asset_id="pump-1", interval_hours=500, now=T0)
        create_plan(session, asset_kind="fan", interval_days=30, now=T0)  # not expressible
        _feed(session, "pump-1", T0.timestamp() + np.arange(0, 601, 60.0), speed=1480)
    with engine.connect() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")
        connection.commit()
    assert "maintenance_dues" not in inspect(engine).get_table_names()
    upgrade(engine)
    with factory() as session:
        (plan,) = session.scalars(select(MaintenancePlan)).all()
        assert (plan.asset_id, plan.interval_hours, plan.priority, plan.tasks) == (
            "pump-1", 500, "P3", [])
        pump = session.get(Asset, "pump-1")
        assert pump is not None
        assert pump.running_hours == pytest.approx(600 / 3600)
        assert pump.running_hours_at is None  # counting starts again from the next record
