"""What a customer's scope costs on the API's list and detail requests.

A fleet of `--assets` assets on the sites of `--customers` customers, one alert and one
work order on every asset, in a SQLite file. Each request runs through the real app
(`TestClient`), once as the service desk (whole fleet) and once as one customer (its
scope: an IN-subquery over its sites' assets on lists, a site lookup on details). The
baseline is the same request by the service desk in the same run, filtered to the same
customer where the route has that filter, so the ratio is the scope's own cost.

    python bench/customer_scope.py [--assets 5000] [--customers 50] [--requests 50]

Prints figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import best_of
from pydantic import SecretStr
from sqlalchemy import event, insert

from cloud.api import build_api
from cloud.db import make_engine, make_session_factory, upgrade
from cloud.db.models import Alert, Asset, Customer, Gateway, Site, WorkOrder
from cloud.domain.tokens import create_token
from cloud.settings import CloudSettings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ADMIN = "bench-admin-token-0123456789"


def seed(url: str, n_assets: int, n_customers: int) -> tuple[str, str, str]:
    """The fleet; returns (desk token, customer token, one of that customer's asset ids)."""
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as s:
        s.execute(insert(Gateway), [{"id": "gw-1", "name": "gw", "status": {}}])
        s.execute(insert(Customer), [
            {"id": f"c{c}", "name": f"Customer {c}", "tier": "key", "created_at": T0}
            for c in range(n_customers)
        ])
        s.execute(insert(Site), [
            {"id": f"s{c}", "customer_id": f"c{c}", "name": f"Site {c}", "region": "",
             "timezone": "UTC", "created_at": T0}
            for c in range(n_customers)
        ])
        s.execute(insert(Asset), [
            {"id": f"a{i}", "gateway_id": "gw-1", "site_id": f"s{i % n_customers}",
             "name": f"asset {i}", "kind": "pump", "location": "", "customer_tier": "standard",
             "running_hours": 0.0, "created_at": T0, "updated_at": T0}
            for i in range(n_assets)
        ])
        s.execute(insert(Alert), [
            {"asset_id": f"a{i}", "failure_mode": "imbalance", "severity": "warning",
             "state": "open", "score": 2.0, "evidence": {}, "model": "m", "model_version": "1",
             "opened_at": T0, "last_seen_at": T0, "absent_rounds": 0, "resolution_note": ""}
            for i in range(n_assets)
        ])
        s.execute(insert(WorkOrder), [
            {"asset_id": f"a{i}", "source": "alert", "failure_mode": "imbalance",
             "failure_mode_code": "", "title": f"WO {i}", "description": "", "priority": "P2",
             "priority_reason": "", "state": "open", "suggested_actions": [],
             "spare_parts": [], "created_at": T0, "updated_at": T0, "created_by": "bench",
             "respond_by": T0, "resolve_by": T0, "resolution_note": ""}
            for i in range(n_assets)
        ])
        _, desk = create_token(s, name="desk", role="service_desk", actor="bench", now=T0)
        _, cust = create_token(s, name="c0", role="customer", actor="bench", now=T0,
                               customer_id="c0")
        s.commit()
    engine.dispose()
    return desk, cust, "a0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=5000)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    out: dict[str, Any] = {"assets": args.assets, "customers": args.customers,
                           "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{Path(d) / 'cloud.db'}"
        t0 = time.perf_counter()
        desk, cust, asset = seed(url, args.assets, args.customers)
        print(f"seeded {args.assets} assets, alerts and work orders in "
              f"{time.perf_counter() - t0:.1f} s")
        settings = CloudSettings(data_dir=Path(d), admin_token=SecretStr(ADMIN))
        engine = make_engine(url)
        statements: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        app = build_api(settings, make_session_factory(engine))
        with TestClient(app) as client:
            # (what, url as the desk, url as the customer)
            cases = [
                ("assets page", "/api/v1/assets?customer_id=c0", "/api/v1/assets"),
                ("alerts page", "/api/v1/alerts", "/api/v1/alerts"),
                ("work orders page", "/api/v1/work-orders", "/api/v1/work-orders"),
                ("one asset", f"/api/v1/assets/{asset}", f"/api/v1/assets/{asset}"),
            ]
            def call(url: str, token: str) -> None:
                for _ in range(args.requests):
                    r = client.get(url, headers={"Authorization": f"Bearer {token}"})
                    assert r.status_code == 200, r.text

            def sql_per_request(url: str, token: str) -> int:
                statements.clear()
                client.get(url, headers={"Authorization": f"Bearer {token}"})
                return len(statements)

            for what, desk_url, cust_url in cases:
                base = best_of(functools.partial(call, desk_url, desk), 5) / args.requests
                scoped = best_of(functools.partial(call, cust_url, cust), 5) / args.requests
                ratio = scoped / base
                n_desk, n_cust = sql_per_request(desk_url, desk), sql_per_request(cust_url, cust)
                print(f"{what:18s} desk {base * 1e3:6.2f} ms ({n_desk} SQL)   customer "
                      f"{scoped * 1e3:6.2f} ms ({n_cust} SQL)   ratio {ratio:.2f}")
                out[what.replace(" ", "_")] = {"desk_ms": round(base * 1e3, 3),
                                               "customer_ms": round(scoped * 1e3, 3),
                                               "ratio": round(ratio, 3),
                                               "desk_sql": n_desk, "customer_sql": n_cust}
        engine.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
