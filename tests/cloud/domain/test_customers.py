"""Customers, sites and contacts: the tier comes from the customer, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from cloud.db import make_engine, make_session_factory, upgrade
from cloud.db.migrate import alembic_config
from cloud.db.models import ApiToken, Asset, Contact, Customer, Site, WorkOrder
from cloud.domain import open_from_alert, seed_fleet, transition, upsert_alert
from cloud.domain.customers import (
    SiteSpec,
    delete_customer,
    delete_site,
    update_customer,
    update_site,
)
from cloud.domain.errors import (
    ConflictError,
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
)
from cloud.domain.scope import FLEET, Scope
from cloud.domain.tokens import create_token
from cloud.domain.workorders import rate_work_order, report_fault

from .conftest import T0

CUSTOMER_FLEET: dict[str, Any] = {
    "customers": [
        {
            "id": "acme",
            "name": "ACME Steel",
            "tier": "strategic",
            "contacts": [
                {"name": "Li Wei", "email": "li.wei@acme.example", "role": "plant_manager"}
            ],
        },
        {"id": "bolt", "name": "Bolt Foods", "tier": "standard"},
    ],
    "sites": [
        {"id": "acme-sh", "customer_id": "acme", "name": "Shanghai", "timezone": "Asia/Shanghai",
         "region": "cn-east"},
        {"id": "bolt-ber", "customer_id": "bolt", "name": "Berlin", "timezone": "Europe/Berlin",
         "region": "de"},
    ],
    "gateways": [{"id": "gw-1"}],
    "assets": [
        {"id": "pump-a", "gateway_id": "gw-1", "site_id": "acme-sh"},
        {"id": "pump-b", "gateway_id": "gw-1", "site_id": "bolt-ber"},
        {"id": "pump-old", "gateway_id": "gw-1", "customer_tier": "key"},
    ],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ironwatch.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    eng = make_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with make_session_factory(engine)() as s:
        seed_fleet(s, CUSTOMER_FLEET)
        s.commit()
        yield s


def _p1_alert(session: Session, asset_id: str) -> Any:
    # alarm severity, confident, no zone/RUL floors: P1 by the priority rule.
    alert = upsert_alert(
        session,
        asset_id=asset_id,
        failure_mode="imbalance",
        severity="alarm",
        score=5.0,
        evidence={},
        model="m",
        model_version="1",
        rul_hours=None,
        now=T0,
        confidence=0.9,
    )
    wo = open_from_alert(session, alert, now=T0)
    assert wo is not None and wo.priority == "P1"
    return wo


@pytest.mark.integration
def test_strategic_customers_p1_alert_gets_a_one_hour_response_deadline(
    session: Session,
) -> None:
    asset = session.get(Asset, "pump-a")
    assert asset is not None
    assert asset.customer_tier == "standard"  # the asset's own field is not what counts
    assert asset.tier == "strategic"
    wo = _p1_alert(session, "pump-a")
    assert wo.respond_by == T0 + timedelta(hours=1)
    # A standard customer's P1 keeps the priority's 4 h (the tier never loosens it) ...
    assert _p1_alert(session, "pump-b").respond_by == T0 + timedelta(hours=4)
    # ... and an asset without a site falls back to its own tier (key: 4 h).
    assert _p1_alert(session, "pump-old").respond_by == T0 + timedelta(hours=4)
    session.commit()


@pytest.mark.integration
def test_a_tier_change_applies_to_work_orders_opened_afterwards(session: Session) -> None:
    update_customer(session, "bolt", {"tier": "strategic"})
    assert _p1_alert(session, "pump-b").respond_by == T0 + timedelta(hours=1)


@pytest.mark.integration
def test_seeding_twice_keeps_one_customer_one_site_and_one_contact_each(
    session: Session,
) -> None:
    seed_fleet(session, CUSTOMER_FLEET)
    session.commit()
    assert len(session.scalars(select(Customer)).all()) == 2
    assert len(session.scalars(select(Site)).all()) == 2
    contacts = session.scalars(select(Contact)).all()
    assert [(c.customer_id, c.email, c.role) for c in contacts] == [
        ("acme", "li.wei@acme.example", "plant_manager")
    ]
    site = session.get(Site, "acme-sh")
    assert site is not None and site.timezone == "Asia/Shanghai"
    assert site.customer.name == "ACME Steel"


@pytest.mark.integration
def test_deleting_a_customer_with_assets_is_refused_and_without_them_takes_its_sites(
    session: Session,
) -> None:
    with pytest.raises(ConflictError, match="owns 1 asset"):
        delete_customer(session, "acme")
    with pytest.raises(ConflictError, match="still has 1 asset"):
        delete_site(session, "acme-sh")
    pump = session.get(Asset, "pump-a")
    assert pump is not None
    session.delete(pump)
    session.flush()
    create_token(session, name="portal", role="customer", actor="t", now=T0, customer_id="acme")
    delete_customer(session, "acme")
    session.commit()
    assert session.get(Customer, "acme") is None
    assert session.get(Site, "acme-sh") is None
    assert session.scalars(select(Contact)).all() == []
    assert session.scalars(select(ApiToken)).all() == []
    assert session.get(Customer, "bolt") is not None


def test_an_unknown_time_zone_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        SiteSpec(id="s", customer_id="c", name="S", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="unknown time zone"):
        Site(id="s", customer_id="c", name="S", timezone="../../etc/passwd")


@pytest.mark.integration
def test_update_site_refuses_an_unknown_time_zone(session: Session) -> None:
    with pytest.raises(InvalidInputError, match="Europe/Atlantis"):
        update_site(session, "bolt-ber", {"timezone": "Europe/Atlantis"})
    assert update_site(session, "bolt-ber", {"timezone": "Europe/Paris"}).timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sites": [{"id": "x", "customer_id": "nobody", "name": "X"}]}, "customer nobody"),
        ({"assets": [{"id": "p", "gateway_id": "gw-1", "site_id": "nowhere"}]}, "site nowhere"),
        (
            {"assets": [{"id": "p", "gateway_id": "gw-1", "site_id": "acme-sh",
                         "customer_tier": "key"}]},
            "comes from its customer",
        ),
    ],
)
def test_a_fleet_file_with_a_dangling_or_contradicting_reference_is_refused(
    change: dict[str, Any], message: str
) -> None:
    engine = make_engine("sqlite://")
    upgrade(engine)
    with make_session_factory(engine)() as s, pytest.raises(InvalidInputError, match=message):
        seed_fleet(s, {**CUSTOMER_FLEET, **change})
    engine.dispose()


@pytest.mark.integration
def test_a_customer_scope_sees_its_own_machines_only(session: Session) -> None:
    acme = Scope.of_customer("acme")
    assert set(session.scalars(acme.asset_ids())) == {"pump-a"}
    assert acme.asset(session, "pump-a").id == "pump-a"
    for other in ("pump-b", "pump-old", "no-such-asset"):
        with pytest.raises(NotFoundError, match=f"asset {other} not found"):
            acme.asset(session, other)
    theirs = _p1_alert(session, "pump-b")
    with pytest.raises(NotFoundError, match=f"work order {theirs.id} not found"):
        acme.work_order(session, theirs.id)
    with pytest.raises(NotFoundError, match=f"alert {theirs.alert_id} not found"):
        acme.alert(session, theirs.alert_id)
    # An unbound customer scope sees nothing; the fleet scope sees everything.
    assert list(session.scalars(Scope.of_customer(None).asset_ids())) == []
    assert set(session.scalars(FLEET.asset_ids())) == {"pump-a", "pump-b", "pump-old"}


@pytest.mark.integration
def test_a_reported_fault_opens_a_work_order_that_is_rated_once_closed(session: Session) -> None:
    asset = session.get(Asset, "pump-a")
    assert asset is not None
    wo = report_fault(session, asset=asset, description="Smoke at the motor", actor="li",
                      now=T0)
    session.commit()
    assert (wo.source, wo.priority, wo.failure_mode) == ("customer", "P2", "customer_report")
    assert wo.respond_by == T0 + timedelta(hours=1)  # ACME is strategic
    with pytest.raises(ConflictError, match=f"work order {wo.id}"):
        report_fault(session, asset=asset, description="Still smoking", actor="li", now=T0)
    with pytest.raises(InvalidTransitionError, match="once the work is finished"):
        rate_work_order(session, wo.id, satisfaction=5, feedback=None, actor="li", now=T0)
    for state in ("in_progress", "done", "closed"):
        transition(session, wo.id, state, actor="desk", now=T0)
    with pytest.raises(InvalidInputError, match="1 to 5"):
        rate_work_order(session, wo.id, satisfaction=0, feedback=None, actor="li", now=T0)
    rate_work_order(session, wo.id, satisfaction=5, feedback=" Great ", actor="li", now=T0)
    session.commit()
    session.expire_all()
    stored = session.get(WorkOrder, wo.id)
    assert stored is not None
    assert (stored.satisfaction, stored.feedback) == (5, "Great")
    assert stored.events[-1].kind == "rated" and stored.events[-1].actor == "li"
    with pytest.raises(ConflictError, match="already rated"):
        rate_work_order(session, wo.id, satisfaction=1, feedback=None, actor="li", now=T0)


@pytest.mark.integration
def test_an_unknown_tier_is_refused(session: Session) -> None:
    with pytest.raises(InvalidInputError, match="unknown tier 'gold'"):
        update_customer(session, "bolt", {"tier": "gold"})


@pytest.mark.integration
def test_migration_0005_downgrades_and_upgrades_again_keeping_assets(engine: Engine) -> None:
    with make_session_factory(engine)() as s:
        seed_fleet(s, CUSTOMER_FLEET)
        s.commit()
    with engine.connect() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
        connection.commit()
    inspector = inspect(engine)
    assert "customers" not in inspector.get_table_names()
    assert "site_id" not in {c["name"] for c in inspector.get_columns("assets")}
    upgrade(engine)
    with make_session_factory(engine)() as s:
        assert {a.id for a in s.scalars(select(Asset))} == {"pump-a", "pump-b", "pump-old"}
        assert all(a.site_id is None for a in s.scalars(select(Asset)))
        seed_fleet(s, CUSTOMER_FLEET)  # the customers come back with the fleet file
        s.commit()
        pump = s.get(Asset, "pump-a")
        assert pump is not None and pump.tier == "strategic"
