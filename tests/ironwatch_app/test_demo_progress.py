"""The demo's progress line says what the cloud says now: every alert and work order with its
current state, newest last, whatever order the API lists them in."""

from __future__ import annotations

from typing import Any

from ironwatch_app.demo import PROGRESS_ITEMS, default_machines, progress_line


def alert(i: int, state: str, severity: str = "alarm") -> dict[str, Any]:
    return {"id": i, "failure_mode": "bearing_outer_race", "severity": severity, "state": state}


def order(i: int, state: str, priority: str = "P1") -> dict[str, Any]:
    return {"id": i, "priority": priority, "state": state,
            "respond_by": "2026-11-27T14:05:00+00:00"}


def test_each_alert_and_work_order_shows_its_current_state() -> None:
    # The API lists alerts newest first; the line reads oldest to newest.
    machines = {
        "pump-01": {"records": 120, "alerts": [alert(2, "open"), alert(1, "resolved", "warning")],
                    "work_orders": [order(1, "open")]},
        "fan-02": {"records": 118, "alerts": [], "work_orders": []},
    }
    line = progress_line(machines)
    assert line == (
        "pump-01: 120 records, alert #1 bearing_outer_race warning resolved, "
        "alert #2 bearing_outer_race alarm open, WO #1 P1 open respond by 14:05 UTC"
        " | fan-02: 118 records"
    )
    # Five seconds later the engineer acknowledged #2 and the order was assigned.
    machines["pump-01"]["alerts"] = [alert(2, "acknowledged"), alert(1, "resolved", "warning")]
    machines["pump-01"]["work_orders"] = [order(1, "assigned")]
    line = progress_line(machines)
    assert "alert #2 bearing_outer_race alarm acknowledged" in line
    assert "WO #1 P1 assigned" in line and "respond by" not in line
    assert " open" not in line


def test_a_long_history_keeps_the_newest() -> None:
    many = [alert(i, "cleared") for i in range(1, 8)]
    line = progress_line({"pump-01": {"records": 5, "alerts": many, "work_orders": []}})
    assert f"{7 - PROGRESS_ITEMS} earlier alerts" in line
    assert "alert #7" in line and "alert #1 " not in line


def test_demo_machines_are_of_different_kinds_and_sizes() -> None:
    machines = default_machines()
    assert len({(m.kind, m.rated_power_kw, m.speed_rpm) for m in machines}) == len(machines)
