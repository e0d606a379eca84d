"""KPIs over a hand-built history whose answers are worked out by hand, on SQLite and on a
real PostgreSQL: reaction times, SLA by priority and tier (cancelled = n/a), false alarms,
lead time achieved, satisfaction, weekly and monthly buckets, and the scope filters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from cloud.db import Base, make_engine, make_session_factory
from cloud.db.models import Alert, Asset, Customer, Site, Verdict, WorkOrder
from cloud.domain import seed_fleet
from cloud.domain.errors import InvalidInputError
from cloud.domain.kpis import KpiScope, bucket_edges, compute_kpis, kpi_series

from .conftest import FLEET, T0  # T0 is Monday 2026-03-02 08:00 UTC

END = T0 + timedelta(days=14)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _alert(asset: str, mode: str, at: float, *, ack: float | None = None) -> Alert:
    return Alert(
        asset_id=asset,
        failure_mode=mode,
        severity="alarm",
        state="acknowledged" if ack is not None else "open",
        score=5.0,
        evidence={},
        model="m",
        model_version="1",
        opened_at=h(at),
        last_seen_at=h(at),
        acknowledged_at=h(ack) if ack is not None else None,
    )


def _order(
    asset: str, priority: str, at: float, respond_h: float, resolve_h: float, **kw: object
) -> WorkOrder:
    return WorkOrder(
        asset_id=asset,
        failure_mode=str(kw.pop("mode", "imbalance")),
        title="job",
        priority=priority,
        created_at=h(at),
        updated_at=h(at),
        respond_by=h(at + respond_h),
        resolve_by=h(at + resolve_h),
        **kw,
    )


def build_history(session: Session) -> None:
    """Three assets of two customers (and one without a site), three alerts, four orders."""
    seed_fleet(session, FLEET)
    session.add_all(
        [
            Customer(id="acme", name="Acme", tier="strategic"),
            Customer(id="beta", name="Beta", tier="standard"),
        ]
    )
    session.flush()
    session.add_all(
        [
            Site(id="acme-sh", customer_id="acme", name="Shanghai", timezone="Asia/Shanghai"),
            Site(id="beta-k", customer_id="beta", name="Cologne", timezone="Europe/Berlin"),
        ]
    )
    session.flush()
    for asset_id, site in (("pump-1", "acme-sh"), ("fan-1", "beta-k"), ("motor-2", None)):
        asset = session.get(Asset, asset_id)
        assert asset is not None
        asset.site_id = site
        asset.created_at = T0 - timedelta(days=30)
    a1 = _alert("pump-1", "imbalance", 0, ack=1)
    a1.state, a1.resolved_at = "resolved", h(5)
    a2 = _alert("fan-1", "looseness", 48, ack=51)
    a3 = _alert("motor-2", "overheating", 192, ack=194)
    session.add_all([a1, a2, a3])
    session.flush()
    session.add(
        Verdict(
            alert_id=a2.id,
            asset_id="fan-1",
            failure_mode="looseness",
            verdict="false_alarm",
            actor="e",
            at=h(50),
        )
    )
    session.add_all(
        [
            # Strategic P1: answered in 0.5 h (met), done at 10 h (met), rated 5.
            _order(
                "pump-1", "P1", 0, 1, 48, alert_id=a1.id, state="closed",
                responded_at=h(0.5), done_at=h(10), closed_at=h(11), satisfaction=5,
                first_time_fix=True, downtime_h=4.0,
            ),
            # Cancelled before anyone answered: n/a for both deadlines.
            _order(
                "fan-1", "P2", 48, 8, 72, alert_id=a2.id, mode="looseness",
                state="cancelled", cancelled_at=h(49),
            ),
            # Key-tier P0: answered at 3 h (missed), done at 30 h (missed), failed at 20 h.
            _order(
                "motor-2", "P0", 192, 2, 24, alert_id=a3.id, mode="overheating",
                state="closed", responded_at=h(195), done_at=h(222), closed_at=h(223),
                failure_confirmed_at=h(212), satisfaction=3,
                first_time_fix=False, downtime_h=6.0,
            ),
            # Strategic P3 by hand, never answered: response missed, resolution still running.
            _order("pump-1", "P3", 216, 12, 168, source="manual", state="open"),
        ]
    )  # fmt: skip
    session.flush()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def history(request: pytest.FixtureRequest) -> Iterator[Session]:
    url = "sqlite://" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as session:
        build_history(session)
        session.commit()
        yield session
    engine.dispose()


def test_kpis_of_the_whole_period(history: Session) -> None:
    k = compute_kpis(history, start=T0, end=END)
    assert k.alerts_opened == 3
    assert k.mean_time_to_acknowledge_h == pytest.approx((1 + 3 + 2) / 3)
    assert k.mean_time_to_resolve_alert_h == pytest.approx(5.0)
    assert k.work_orders_opened == 4
    assert k.mean_time_to_respond_h == pytest.approx((0.5 + 3) / 2)
    assert k.mean_time_to_resolve_h == pytest.approx((10 + 30) / 2)
    # Response: met, n/a (cancelled), missed, missed. Resolution: met, n/a, missed, running.
    assert k.sla_response_compliance == pytest.approx(1 / 3)
    assert k.sla_resolution_compliance == pytest.approx(1 / 2)
    assert k.false_alarms == 1 and k.false_alarm_rate == pytest.approx(1 / 3)
    assert k.confirmed_failures == 1 and k.mean_lead_time_h == pytest.approx(20.0)
    # Lead time achieved: to the repair (10 h) where no failure came, to the failure (20 h).
    assert k.lead_times_achieved == 2
    assert k.mean_lead_time_achieved_h == pytest.approx(15.0)
    assert k.satisfaction_mean == pytest.approx(4.0) and k.satisfaction_count == 2
    assert k.assets == 3 and k.asset_hours == pytest.approx(3 * 14 * 24)
    # One fixed on the first visit of the two whose outcome says; 4 h + 6 h down.
    assert (k.first_time_fixes, k.first_time_fix_judged) == (1, 2)
    assert k.first_time_fix_rate == pytest.approx(0.5)
    assert k.downtime_h == pytest.approx(10.0)
    assert k.availability == pytest.approx(1 - 10 / (3 * 14 * 24))


def test_sla_by_priority_and_tier(history: Session) -> None:
    k = compute_kpis(history, start=T0, end=END)
    by_p = {p: (c["response"].met, c["response"].judged) for p, c in k.sla_by_priority.items()}
    assert by_p == {"P0": (0, 1), "P1": (1, 1), "P2": (0, 0), "P3": (0, 1)}
    assert k.sla_by_priority["P0"]["resolution"].rate == 0.0
    assert k.sla_by_priority["P2"]["resolution"].rate is None  # cancelled: n/a
    assert k.sla_by_priority["P3"]["resolution"].judged == 0  # deadline not reached yet
    strategic = k.sla_by_tier["strategic"]  # pump-1 via its site's customer
    assert (strategic["response"].met, strategic["response"].judged) == (1, 2)
    assert (strategic["resolution"].met, strategic["resolution"].judged) == (1, 1)
    assert k.sla_by_tier["key"]["response"].rate == 0.0  # motor-2's own fallback tier
    assert k.sla_by_tier["standard"]["response"].judged == 0
    body = k.as_dict()
    assert body["sla_by_tier"]["strategic"]["response"] == {"met": 1, "judged": 2, "rate": 0.5}


def test_weekly_and_monthly_buckets(history: Session) -> None:
    weeks = kpi_series(history, start=T0, end=h(13 * 24), bucket="week")
    assert [w.start.isoformat() for w in weeks] == [
        "2026-03-02T00:00:00+00:00",
        "2026-03-09T00:00:00+00:00",
    ]
    assert [(w.alerts_opened, w.work_orders_opened) for w in weeks] == [(2, 2), (1, 2)]
    assert [w.sla_response_compliance for w in weeks] == [1.0, 0.0]
    assert [w.false_alarm_rate for w in weeks] == [0.5, 0.0]
    assert [w.satisfaction_mean for w in weeks] == [5.0, 3.0]
    assert [w.first_time_fix_rate for w in weeks] == [1.0, 0.0]
    assert [w.downtime_h for w in weeks] == [4.0, 6.0]  # in the week the work finished
    (march,) = kpi_series(history, start=T0, end=END, bucket="month")
    assert (march.start.day, march.end.month) == (1, 4)
    assert march.alerts_opened == 3 and march.asset_hours == pytest.approx(3 * 31 * 24)


def test_scope_filters(history: Session) -> None:
    acme = compute_kpis(history, start=T0, end=END, scope=KpiScope(customer_id="acme"))
    assert (acme.alerts_opened, acme.work_orders_opened, acme.assets) == (1, 2, 1)
    fans = compute_kpis(history, start=T0, end=END, scope=KpiScope(asset_kind="fan"))
    assert (fans.alerts_opened, fans.false_alarm_rate) == (1, 1.0)
    site = compute_kpis(history, start=T0, end=END, scope=KpiScope(site_id="beta-k"))
    assert site.work_orders_opened == 1 and site.sla_response_compliance is None
    nobody = compute_kpis(history, start=T0, end=END, scope=KpiScope(customer_id="nobody"))
    assert (nobody.alerts_opened, nobody.assets, nobody.availability) == (0, 0, None)


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        bucket_edges(END, T0, "week")
    with pytest.raises(InvalidInputError):
        bucket_edges(T0, T0 + timedelta(days=3650), "week")
    with pytest.raises(InvalidInputError):
        bucket_edges(T0, END, "year")  # type: ignore[arg-type]
