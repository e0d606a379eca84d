"""The demo's fleet file: two customers of different tiers with sites in two time zones own
the demo's machines, and the tier reaches the work orders' deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import tomli_w
from sqlalchemy import select

from cloud.db import make_engine, make_session_factory, upgrade
from cloud.db.models import Asset, Customer, Site
from cloud.domain import open_from_alert, seed_fleet, upsert_alert
from ironwatch_app.demo import DemoMachine, DemoRun, default_machines

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _seeded(tmp_path: Path, machines: list[DemoMachine]) -> tuple[DemoRun, str]:
    run = DemoRun(machines, workdir=tmp_path, time_scale=3600.0, http_port=1)
    fleet = tmp_path / "fleet.toml"
    # Through TOML, as the demo hands it to the cloud service.
    fleet.write_text(tomli_w.dumps(run.fleet_document()))
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    upgrade(url)
    return run, str(fleet)


def test_the_demo_seeds_two_customers_of_different_tiers_in_two_time_zones(
    tmp_path: Path,
) -> None:
    _, fleet = _seeded(tmp_path, default_machines())
    engine = make_engine(f"sqlite:///{tmp_path / 'cloud.db'}")
    with make_session_factory(engine)() as session:
        seed_fleet(session, fleet)
        session.commit()
        tiers = {c.id: c.tier for c in session.scalars(select(Customer))}
        assert tiers == {"jiangnan-steel": "strategic", "rheinland-foods": "standard"}
        zones = {s.customer_id: s.timezone for s in session.scalars(select(Site))}
        assert zones == {"jiangnan-steel": "Asia/Shanghai", "rheinland-foods": "Europe/Berlin"}
        owners = {a.id: (a.customer_id, a.tier) for a in session.scalars(select(Asset))}
        assert owners == {
            "pump-01": ("jiangnan-steel", "strategic"),
            "fan-02": ("jiangnan-steel", "strategic"),
            "motor-03": ("rheinland-foods", "standard"),
        }
        customer = session.get(Customer, "jiangnan-steel")
        assert customer is not None and [c.role for c in customer.contacts] == [
            "plant_manager", "maintenance"
        ]
        # The degrading pump's P1 gets its customer's 1 h response.
        alert = upsert_alert(
            session, asset_id="pump-01", failure_mode="bearing_outer_race", severity="alarm",
            score=4.0, evidence={}, model="m", model_version="1", rul_hours=None, now=T0,
            confidence=0.9,
        )
        wo = open_from_alert(session, alert, now=T0)
        assert wo is not None and wo.priority == "P1"
        assert wo.respond_by == T0 + timedelta(hours=1)
    engine.dispose()


def test_machines_without_a_site_bring_no_customers(tmp_path: Path) -> None:
    machines = [DemoMachine("pump-04", "pump", "gw-c", "modbus", "none", 1480.0, seed=4)]
    run, _ = _seeded(tmp_path, machines)
    doc = run.fleet_document()
    assert doc["customers"] == [] and doc["sites"] == []
    assert doc["assets"][0]["customer_tier"] == "key"
