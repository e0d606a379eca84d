"""The demo's service organisation: a small roster of technicians and spare parts in stock
in two warehouses, created through the REST API like a service desk would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["DEMO_PARTS", "DEMO_TECHNICIANS", "DEMO_WAREHOUSES", "seed_service"]

WEEKDAYS_8_17 = {d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
ALL_WEEK = {d: ["00:00", "24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}

# Regions are the demo sites' (ironwatch_app.demo.DEMO_SITES): Shanghai and Cologne.
DEMO_WAREHOUSES: list[dict[str, Any]] = [
    {"id": "wh-shanghai", "name": "Shanghai depot", "region": "cn-east"},
    {"id": "wh-cologne", "name": "Cologne depot", "region": "de-west"},
]
# Part number, name, {warehouse: (on hand, reorder level)}. Part numbers are the ones the
# failure-mode catalogue names; the bearing stock in Shanghai is at its reorder level, so
# the first bearing job there raises a low-stock notice.
DEMO_PARTS: list[tuple[str, str, dict[str, tuple[int, int]]]] = [
    ("BRG-6205-2RS", "Deep groove ball bearing 6205-2RS",
     {"wh-shanghai": (2, 2), "wh-cologne": (6, 2)}),
    ("GRS-LGMT2-400", "Bearing grease LGMT 2, 400 g",
     {"wh-shanghai": (10, 3), "wh-cologne": (4, 3)}),
    ("SEAL-25-47-7", "Radial shaft seal 25x47x7", {"wh-shanghai": (3, 1)}),
    ("BAL-WEIGHT-SET", "Balancing weight set", {"wh-cologne": (2, 1)}),
    ("CPL-INSERT-L100", "Coupling insert L100", {"wh-shanghai": (1, 1), "wh-cologne": (2, 1)}),
    ("SHIM-SET-A", "Stainless shim set A", {"wh-shanghai": (5, 2), "wh-cologne": (5, 2)}),
    ("BOLT-M16-SET", "Hold-down bolt set M16", {"wh-cologne": (4, 2)}),
]
DEMO_TECHNICIANS: list[dict[str, Any]] = [
    {"name": "Wei Zhang", "region": "cn-east", "asset_kinds": ["pump", "motor"],
     "failure_modes": ["bearing_outer_race", "bearing_inner_race", "bearing_ball",
                       "bearing_cage", "overheating", "scheduled_service"],
     "calendar": {"timezone": "Asia/Shanghai", "weekly": ALL_WEEK}},
    {"name": "Li Na", "region": "cn-east", "asset_kinds": ["fan", "motor", "pump"],
     "failure_modes": ["imbalance", "misalignment", "looseness", "excessive_vibration"],
     "calendar": {"timezone": "Asia/Shanghai", "weekly": WEEKDAYS_8_17}},
    {"name": "Jonas Weber", "region": "de-west", "asset_kinds": ["pump", "fan", "gearbox"],
     "failure_modes": ["bearing_outer_race", "imbalance", "unexplained", "unknown_anomaly"],
     "calendar": {"timezone": "Europe/Berlin", "weekly": ALL_WEEK}},
    {"name": "Dora Silva", "region": "de-west", "asset_kinds": ["motor", "spindle"],
     "failure_modes": ["overheating", "looseness", "scheduled_service"],
     "calendar": {"timezone": "Europe/Berlin", "weekly": WEEKDAYS_8_17,
                  "days_off": ["2026-12-24", "2026-12-25"]}},
]

Send = Callable[[str, str, dict[str, Any]], Any]


def seed_service(send: Send) -> dict[str, int]:
    """Create the warehouses, parts, stock and technicians with `send(method, path, body)`
    (paths below /api/v1); returns how many of each were created."""
    for warehouse in DEMO_WAREHOUSES:
        send("POST", "/warehouses", warehouse)
    for part_id, name, stock in DEMO_PARTS:
        send("POST", "/parts", {"id": part_id, "name": name})
        for warehouse_id, (on_hand, reorder) in stock.items():
            send("PUT", f"/warehouses/{warehouse_id}/stock/{part_id}",
                 {"on_hand": on_hand, "reorder_level": reorder})
    for technician in DEMO_TECHNICIANS:
        send("POST", "/technicians", technician)
    return {
        "warehouses": len(DEMO_WAREHOUSES),
        "parts": len(DEMO_PARTS),
        "technicians": len(DEMO_TECHNICIANS),
    }
