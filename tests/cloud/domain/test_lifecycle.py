"""The work-order lifecycle with outcomes, dispatch to technicians and spare parts, on
SQLite and a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cloud.db import Base, SessionFactory, WebhookDelivery, make_engine, make_session_factory
from cloud.db.migrate import upgrade
from cloud.db.models import (
    Asset,
    Customer,
    Part,
    Site,
    StockLevel,
    StockNotice,
    Technician,
    Warehouse,
    WorkOrder,
)
from cloud.domain import open_manual, seed_fleet, transition
from cloud.domain.errors import ConflictError, InvalidInputError, InvalidTransitionError
from cloud.domain.parts import parts_of, reserve_parts, set_stock
from cloud.domain.subscriptions import create_subscription
from cloud.domain.technicians import (
    WorkingCalendar,
    next_working_time,
    suggest_technicians,
)
from cloud.domain.workorders import (
    Outcome,
    assign,
    rate_work_order,
    resolution_outcome,
    response_outcome,
    update_work_order,
)

from .conftest import FLEET, T0

pytestmark = pytest.mark.integration

BEARING = "BRG-6205-2RS"
GREASE = "GRS-LGMT2-400"
SEAL = "SEAL-25-47-7"


def _seeded(engine: Engine) -> SessionFactory:
    made = make_session_factory(engine)
    with made() as session:
        seed_fleet(session, FLEET)
        stock(session, {BEARING: 2, GREASE: 5, SEAL: 1}, reorder={BEARING: 2})
        session.commit()
    return made


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(request: pytest.FixtureRequest) -> Iterator[SessionFactory]:
    if request.param == "sqlite":
        engine: Engine = make_engine("sqlite://")
        Base.metadata.create_all(engine)
    else:
        engine = make_engine(request.getfixturevalue("postgres_url"))
        upgrade(engine)
    yield _seeded(engine)
    engine.dispose()


@pytest.fixture
def pg_factory(postgres_url: str) -> Iterator[SessionFactory]:
    """PostgreSQL only: SQLite has one writer at a time, the row-lock race is PostgreSQL's."""
    engine = make_engine(postgres_url)
    upgrade(engine)
    yield _seeded(engine)
    engine.dispose()


@pytest.fixture
def session(factory: SessionFactory) -> Iterator[Session]:
    with factory() as s:
        yield s


def stock(
    session: Session, levels: dict[str, int], *, reorder: dict[str, int] | None = None
) -> None:
    """Parts in the north warehouse; an empty south warehouse for every part."""
    session.add_all([Warehouse(id="wh-north", region="north"), Warehouse(id="wh-south",
                                                                         region="south")])
    for part_id, n in levels.items():
        session.add(Part(id=part_id, name=part_id.lower()))
        session.flush()
        session.add(StockLevel(part_id=part_id, warehouse_id="wh-north", on_hand=n, reserved=0,
                               reorder_level=(reorder or {}).get(part_id, 0)))
        session.add(StockLevel(part_id=part_id, warehouse_id="wh-south", on_hand=0, reserved=0,
                               reorder_level=0))
    session.flush()


def technician(session: Session, name: str, **fields: Any) -> Technician:
    tech = Technician(
        name=name,
        failure_modes=fields.get("failure_modes", []),
        asset_kinds=fields.get("asset_kinds", []),
        region=fields.get("region", ""),
        calendar=fields.get("calendar", {"weekly": {d: ["00:00", "24:00"] for d in
                                                    ("mon", "tue", "wed", "thu", "fri", "sat",
                                                     "sun")}}),
        active=fields.get("active", True),
        created_at=T0,
        updated_at=T0,
    )
    session.add(tech)
    session.flush()
    return tech


def level(session: Session, part_id: str, warehouse_id: str = "wh-north") -> StockLevel:
    found = session.get(StockLevel, (part_id, warehouse_id), populate_existing=True)
    assert found is not None
    return found


def bearing_job(session: Session) -> WorkOrder:
    return open_manual(
        session, asset_id="pump-1", failure_mode="bearing_outer_race", priority="P2",
        actor="desk", now=T0,
    )


def test_full_lifecycle_with_outcome_confirmation_and_follow_up(session: Session) -> None:
    ana = technician(session, "Ana", failure_modes=["bearing_outer_race"], asset_kinds=["pump"])
    wo = bearing_job(session)
    h = timedelta(hours=1)
    transition(session, wo.id, "accepted", actor="desk", now=T0 + 0.5 * h)
    # Accepting answers the customer and reserves what a bearing job needs.
    assert wo.responded_at == wo.accepted_at == T0 + 0.5 * h
    assert {r.part_id: r.state for r in wo.parts} == {
        BEARING: "reserved", GREASE: "reserved", SEAL: "reserved"
    }
    assert level(session, BEARING).reserved == 1
    assign(session, wo.id, ana.id, actor="desk", now=T0 + h)
    assert (wo.state, wo.technician_id, wo.assignee) == ("assigned", ana.id, "Ana")
    transition(session, wo.id, "in_progress", actor="ana", now=T0 + 2 * h)
    assert wo.started_at == T0 + 2 * h
    transition(
        session, wo.id, "done", actor="ana", now=T0 + 5 * h, note="bearing swapped",
        outcome=Outcome(
            cause_found="outer race spalling, grease contaminated",
            action_taken="replaced DE bearing, re-greased",
            parts_used={BEARING: 1, GREASE: 1},
            downtime_h=3.5,
            first_time_fix=True,
        ),
    )
    assert (wo.cause_found, wo.action_taken, wo.downtime_h, wo.first_time_fix) == (
        "outer race spalling, grease contaminated", "replaced DE bearing, re-greased", 3.5, True
    )
    # Used parts left stock; the unused seal went back.
    assert {r.part_id: (r.state, r.used) for r in wo.parts} == {
        BEARING: ("used", 1), GREASE: ("used", 1), SEAL: ("released", 0)
    }
    assert (level(session, BEARING).on_hand, level(session, BEARING).reserved) == (1, 0)
    assert (level(session, GREASE).on_hand, level(session, SEAL).on_hand) == (4, 1)
    assert level(session, SEAL).reserved == 0
    rate_work_order(session, wo.id, satisfaction=4, feedback="quick", actor="customer",
                    now=T0 + 6 * h)
    assert (wo.satisfaction, wo.feedback) == (4, "quick")
    with pytest.raises(ConflictError):
        rate_work_order(session, wo.id, satisfaction=5, feedback=None, actor="c", now=T0)
    visit = T0 + timedelta(days=14)
    transition(session, wo.id, "follow_up", actor="desk", now=T0 + 7 * h,
               follow_up_at=visit, note="check vibration after run-in")
    assert (wo.follow_up_at, wo.follow_up_note) == (visit, "check vibration after run-in")
    transition(session, wo.id, "closed", actor="desk", now=visit)
    session.commit()
    steps = [(e.kind, e.from_state, e.to_state, e.actor, e.at) for e in wo.events]
    assert steps == [
        ("created", None, "open", "desk", T0),
        ("transition", "open", "accepted", "desk", T0 + 0.5 * h),
        ("transition", "accepted", "assigned", "desk", T0 + h),
        ("transition", "assigned", "in_progress", "ana", T0 + 2 * h),
        ("transition", "in_progress", "done", "ana", T0 + 5 * h),
        ("rated", None, None, "customer", T0 + 6 * h),
        ("transition", "done", "follow_up", "desk", T0 + 7 * h),
        ("transition", "follow_up", "closed", "desk", visit),
    ]
    assert wo.events[2].details["technician_id"] == ana.id
    assert wo.events[4].details["outcome"]["parts_used"] == {BEARING: 1, GREASE: 1}
    # P2 on a strategic customer: respond within 1 h (met at 0.5 h), resolve within 72 h.
    assert (response_outcome(wo, visit), resolution_outcome(wo, visit)) == ("met", "met")


def test_an_invalid_move_names_the_allowed_ones(session: Session) -> None:
    wo = bearing_job(session)
    with pytest.raises(InvalidTransitionError) as err:
        transition(session, wo.id, "done", actor="desk", now=T0)
    assert err.value.details["allowed"] == ["accepted", "assigned", "cancelled", "in_progress"]
    assert "allowed: accepted, assigned, cancelled, in_progress" in err.value.message
    transition(session, wo.id, "in_progress", actor="d", now=T0)
    transition(session, wo.id, "done", actor="d", now=T0)
    with pytest.raises(InvalidInputError, match="return visit"):
        transition(session, wo.id, "follow_up", actor="d", now=T0)


def test_cancelling_releases_every_reservation_and_reports_no_sla(session: Session) -> None:
    wo = bearing_job(session)
    transition(session, wo.id, "accepted", actor="desk", now=T0)
    assert level(session, BEARING).reserved == 1
    late = T0 + timedelta(days=30)
    transition(session, wo.id, "cancelled", actor="desk", now=late, note="customer postponed")
    assert {r.state for r in wo.parts} == {"released"}
    assert level(session, BEARING).reserved == 0
    assert level(session, BEARING).on_hand == 2
    # Responded in time, but a cancelled job never reports a deadline met (or missed).
    assert (response_outcome(wo, late), resolution_outcome(wo, late)) == ("n/a", "n/a")


def test_edits_only_before_dispatch(session: Session) -> None:
    wo = bearing_job(session)
    update_work_order(session, wo.id, actor="d", now=T0, changes={"title": "DE bearing"})
    transition(session, wo.id, "accepted", actor="d", now=T0)
    update_work_order(session, wo.id, actor="d", now=T0, changes={"description": "noisy"})
    transition(session, wo.id, "assigned", actor="d", now=T0, assignee="ana")
    with pytest.raises(InvalidTransitionError) as err:
        update_work_order(session, wo.id, actor="d", now=T0, changes={"title": "x"})
    assert err.value.details["editable_states"] == ["open", "accepted"]


def test_short_parts_are_retried_and_stock_cannot_go_below_reservations(
    session: Session,
) -> None:
    first = bearing_job(session)
    second = open_manual(session, asset_id="fan-1", failure_mode="bearing_inner_race",
                         priority="P2", actor="d", now=T0)
    transition(session, first.id, "accepted", actor="d", now=T0)
    transition(session, second.id, "accepted", actor="d", now=T0)
    # One seal in stock: the second job is short of it.
    assert {r.part_id: r.state for r in second.parts}[SEAL] == "short"
    needs = {n.part_id: n for n in parts_of(session, second)}
    assert (needs[SEAL].state, needs[SEAL].available) == ("short", 0)
    with pytest.raises(InvalidInputError):
        set_stock(session, SEAL, "wh-north", now=T0, on_hand=0)  # one is reserved
    set_stock(session, SEAL, "wh-south", now=T0, on_hand=3)  # a delivery arrives
    reserve_parts(session, second, now=T0)
    row = next(r for r in second.parts if r.part_id == SEAL)
    assert (row.state, row.warehouse_id) == ("reserved", "wh-south")


def test_low_stock_raises_a_notice_and_an_event(session: Session) -> None:
    create_subscription(session, name="stores", url="https://stores.example/hook",
                        events=["stock.*"], actor="admin", now=T0 - timedelta(days=1))
    wo = bearing_job(session)
    transition(session, wo.id, "in_progress", actor="ana", now=T0)
    transition(
        session, wo.id, "done", actor="ana", now=T0 + timedelta(hours=2),
        outcome=Outcome(cause_found="c", action_taken="a", parts_used={BEARING: 1},
                        first_time_fix=True),
    )
    # 2 → 1 bearings with a reorder level of 2.
    notice = session.scalars(select(StockNotice)).one()
    assert (notice.part_id, notice.warehouse_id, notice.on_hand, notice.reorder_level) == (
        BEARING, "wh-north", 1, 2
    )
    events = session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.event == "stock.low")
    ).all()
    assert len(events) == 1 and '"part_id":"BRG-6205-2RS"' in events[0].body
    set_stock(session, BEARING, "wh-north", now=T0 + timedelta(days=1), on_hand=10)
    assert notice.cleared_at == T0 + timedelta(days=1)


def test_suggestion_prefers_skill_region_and_low_load(session: Session) -> None:
    skilled_north = technician(session, "Bo", failure_modes=["bearing_outer_race"],
                               asset_kinds=["pump"], region="north")
    skilled_south = technician(session, "Cy", failure_modes=["bearing_outer_race"],
                               asset_kinds=["pump"], region="south")
    unskilled_north = technician(session, "Di", failure_modes=["imbalance"],
                                 asset_kinds=["pump"], region="north")
    technician(session, "Ed", failure_modes=["bearing_outer_race"], region="north",
               active=False)
    wo = bearing_job(session)
    ranked = suggest_technicians(session, wo, now=T0, region_of=lambda asset: "north")
    assert [s.technician.name for s in ranked] == ["Bo", "Cy", "Di"]
    best = ranked[0]
    assert best.technician.id == skilled_north.id
    assert best.skill_match and best.region_match
    assert "skilled in bearing_outer_race" in best.reasons
    assert "same region (north)" in best.reasons
    # Load counts: two open jobs on Bo put Cy (same skill, other region) ahead.
    for mode in ("looseness", "imbalance"):
        job = open_manual(session, asset_id="motor-2", failure_mode=mode, priority="P3",
                          actor="d", now=T0)
        assign(session, job.id, skilled_north.id, actor="d", now=T0)
    ranked = suggest_technicians(session, wo, now=T0, region_of=lambda asset: "north")
    assert ranked[0].technician.id == skilled_south.id
    assert ranked[-1].technician.id == unskilled_north.id
    # Without a known region the region is not scored and says so.
    plain = suggest_technicians(session, wo, now=T0, region_of=lambda asset: None)
    assert plain[0].region_match is None
    assert "asset region unknown: region not scored" in plain[0].reasons


def test_suggestion_reads_the_region_of_the_assets_site(session: Session) -> None:
    session.add(Customer(id="acme", name="Acme", tier="key"))
    session.flush()
    session.add(Site(id="acme-north", customer_id="acme", name="North plant", region="north"))
    session.flush()
    pump = session.get(Asset, "pump-1")
    assert pump is not None
    pump.site_id = "acme-north"
    session.flush()
    session.expire(pump)
    technician(session, "South", failure_modes=["bearing_outer_race"], region="south")
    technician(session, "North", failure_modes=["bearing_outer_race"], region="north")
    technician(session, "North, other skill", failure_modes=["imbalance"], region="north")
    ranked = suggest_technicians(session, bearing_job(session), now=T0)
    best = ranked[0]
    assert best.technician.name == "North"
    assert best.skill_match and best.region_match is True
    assert "same region (north)" in best.reasons
    assert ranked[1].technician.name == "South" and ranked[1].region_match is False


def test_calendar_decides_availability_before_the_deadline(session: Session) -> None:
    # T0 is Monday 2026-03-02 08:00 UTC; a P0 must be resolved within 24 h.
    on_leave = {"weekly": {"mon": ["08:00", "16:00"], "tue": ["08:00", "16:00"]},
                "days_off": ["2026-03-02", "2026-03-03"]}
    technician(session, "Away", failure_modes=["bearing_outer_race"], region="north",
               calendar=on_leave)
    technician(session, "Here", failure_modes=[], region="south")
    wo = open_manual(session, asset_id="pump-1", failure_mode="bearing_outer_race",
                     priority="P0", actor="d", now=T0)
    ranked = suggest_technicians(session, wo, now=T0, region_of=lambda asset: "north")
    assert [(s.technician.name, s.available) for s in ranked] == [
        ("Here", True), ("Away", False)
    ]
    assert "no working hours before the resolution deadline" in ranked[1].reasons


def test_next_working_time_follows_the_local_calendar() -> None:
    berlin = WorkingCalendar.model_validate(
        {"timezone": "Europe/Berlin", "weekly": {"tue": ["07:00", "15:00"]},
         "days_off": [date(2026, 3, 10)]}
    )
    # Monday 08:00 UTC → Tuesday 07:00 Berlin (06:00 UTC); a week later that Tuesday is a
    # day off, so the Tuesday after.
    assert next_working_time(berlin, T0, T0 + timedelta(days=30)) == T0 + timedelta(hours=22)
    later = T0 + timedelta(days=7)
    assert next_working_time(berlin, later, later + timedelta(days=30)) == later + timedelta(
        days=7, hours=22
    )
    assert next_working_time(berlin, T0, T0 + timedelta(hours=12)) is None


def test_reassignment_is_kept_in_the_history(session: Session) -> None:
    a = technician(session, "Ana")
    b = technician(session, "Ben")
    wo = bearing_job(session)
    assign(session, wo.id, a.id, actor="desk", now=T0)
    transition(session, wo.id, "in_progress", actor="ana", now=T0)
    assign(session, wo.id, b.id, actor="desk", now=T0 + timedelta(hours=1), note="Ana is ill")
    assert (wo.state, wo.technician_id, wo.assignee) == ("in_progress", b.id, "Ben")
    last = wo.events[-1]
    assert (last.kind, last.details["previous_technician_id"], last.details["technician_id"],
            last.details["note"]) == ("reassigned", a.id, b.id, "Ana is ill")
    transition(session, wo.id, "cancelled", actor="desk", now=T0)
    with pytest.raises(InvalidTransitionError):
        assign(session, wo.id, a.id, actor="desk", now=T0)


def test_concurrent_reservations_never_oversell(pg_factory: SessionFactory) -> None:
    factory = pg_factory
    # One seal in stock; two jobs that need it are accepted at the same moment.
    with factory() as s:
        ids = [
            open_manual(s, asset_id=asset, failure_mode="bearing_outer_race", priority="P2",
                        actor="d", now=T0).id
            for asset in ("pump-1", "fan-1")
        ]
        s.commit()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def accept(wo_id: int) -> None:
        try:
            with factory() as s:
                wo = s.get(WorkOrder, wo_id)
                assert wo is not None
                barrier.wait(timeout=10)
                transition(s, wo_id, "accepted", actor="desk", now=T0)
                s.commit()
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=accept, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with factory() as s:
        seal = s.get(StockLevel, (SEAL, "wh-north"))
        assert seal is not None and (seal.on_hand, seal.reserved) == (1, 1)
        states = sorted(
            r.state for i in ids for r in s.get(WorkOrder, i).parts  # type: ignore[union-attr]
            if r.part_id == SEAL
        )
        assert states == ["reserved", "short"]
        bearings = s.get(StockLevel, (BEARING, "wh-north"))
        assert bearings is not None and bearings.reserved == 2  # two in stock, both taken
