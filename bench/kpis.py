"""KPI series over a year of fleet history (SQLite, as on one machine).

Seeds `--assets` assets and `--rows` alerts, each with a work order (responded, done,
some rated, some with false-alarm verdicts), spread over 2026. Times
`cloud.domain.kpis.kpi_series` by week and by month (rows loaded once and split into
buckets in Python) and, as the baseline in the same run, the same buckets computed one by
one with `compute_kpis` (queries per bucket). Also times one similar-cases lookup over a
library of `--cases` fault cases.

    python bench/kpis.py [--assets 500] [--rows 20000] [--cases 5000]

Prints figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from datetime import UTC, datetime, timedelta

from _common import best_of
from sqlalchemy import insert, select

from cloud.db import Base, make_engine, make_session_factory
from cloud.db.models import Alert, Asset, FaultCase, Verdict, WorkOrder
from cloud.domain.cases import case_signature, similar_cases
from cloud.domain.kpis import bucket_edges, compute_kpis, kpi_series

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)
KINDS = ["pump", "fan", "motor", "gearbox", "spindle"]
MODES = ["bearing_outer_race", "imbalance", "misalignment", "looseness", "cavitation"]


def _evidence(rng: random.Random) -> dict[str, object]:
    return {
        "moved_features": [
            {"feature": f, "z": rng.uniform(-10, 10)}
            for f in ("env_bpfo_ms2", "kurtosis", "velocity_rms_mms", "accel_rms_ms2")
        ],
        "velocity_rms_mms": rng.uniform(0.5, 8.0),
        "spectral_peaks": [{"fault": "bearing_outer_race", "ratio_1x": rng.uniform(1, 20)}],
    }


def seed(url: str, n_assets: int, n_rows: int, n_cases: int) -> None:
    rng = random.Random(7)
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(Asset),
            [
                {"id": f"a{i}", "name": f"asset {i}", "kind": KINDS[i % 5],
                 "customer_tier": ("strategic", "key", "standard")[i % 3],
                 "created_at": T0 - timedelta(days=30), "updated_at": T0}
                for i in range(n_assets)
            ],
        )  # fmt: skip
        span_s = (END - T0).total_seconds()
        alerts, orders, verdicts = [], [], []
        for i in range(n_rows):
            at = T0 + timedelta(seconds=rng.uniform(0, span_s))
            asset = f"a{rng.randrange(n_assets)}"
            alerts.append(
                {"id": i + 1, "asset_id": asset, "failure_mode": MODES[i % 5],
                 "severity": "alarm", "state": "resolved", "score": 3.0, "evidence": {},
                 "model": "m", "model_version": "1", "opened_at": at, "last_seen_at": at,
                 "acknowledged_at": at + timedelta(hours=rng.uniform(0, 6)),
                 "resolved_at": at + timedelta(hours=rng.uniform(6, 60))}
            )  # fmt: skip
            orders.append(
                {"id": i + 1, "asset_id": asset, "alert_id": i + 1, "failure_mode": MODES[i % 5],
                 "title": "job", "priority": f"P{i % 4}", "state": "done", "created_at": at,
                 "updated_at": at, "respond_by": at + timedelta(hours=4),
                 "resolve_by": at + timedelta(hours=48),
                 "responded_at": at + timedelta(hours=rng.uniform(0, 8)),
                 "done_at": at + timedelta(hours=rng.uniform(5, 80)),
                 "satisfaction": rng.randint(1, 5) if i % 3 == 0 else None}
            )  # fmt: skip
            if i % 10 == 0:
                verdicts.append(
                    {"alert_id": i + 1, "asset_id": asset, "failure_mode": MODES[i % 5],
                     "verdict": "false_alarm", "actor": "e", "at": at}
                )  # fmt: skip
        conn.execute(insert(Alert), alerts)
        conn.execute(insert(WorkOrder), orders)
        conn.execute(insert(Verdict), verdicts)
        conn.execute(
            insert(FaultCase),
            [
                {"asset_id": f"a{j % n_assets}", "asset_name": "", "asset_kind": KINDS[j % 5],
                 "failure_mode": MODES[j % 5], "title": "", "evidence": {}, "diagnosis": {},
                 "signature": case_signature(_evidence(rng)), "cause_found": "c",
                 "action_taken": "a", "parts_used": {}, "opened_at": T0, "closed_at": T0,
                 "created_at": T0}
                for j in range(n_cases)
            ],
        )  # fmt: skip
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--cases", type=int, default=5_000)
    args = parser.parse_args()
    url = "sqlite:///file:kpibench?mode=memory&cache=shared&uri=true"
    keep = make_engine(url)  # holds the shared in-memory database open
    seed(url, args.assets, args.rows, args.cases)
    factory = make_session_factory(keep)
    out: dict[str, float] = {}
    with factory() as session:
        for bucket in ("week", "month"):
            edges = bucket_edges(T0, END, bucket)  # type: ignore[arg-type]

            def series(b: str = bucket) -> object:
                session.expunge_all()
                return kpi_series(session, start=T0, end=END, bucket=b, now=END)  # type: ignore[arg-type]

            def one_by_one(e: list[datetime] = edges) -> object:
                session.expunge_all()
                return [
                    compute_kpis(session, start=lo, end=hi, now=END)
                    for lo, hi in itertools.pairwise(e)
                ]

            t_series, t_loop = best_of(series), best_of(one_by_one)
            out[f"series_{bucket}_s"] = round(t_series, 3)
            out[f"per_bucket_{bucket}_s"] = round(t_loop, 3)
            print(
                f"{bucket}: {len(edges) - 1} buckets, kpi_series {t_series:.2f} s, "
                f"compute_kpis per bucket {t_loop:.2f} s ({t_loop / t_series:.1f}x)"
            )
        alert = session.scalars(select(Alert).limit(1)).one()
        alert.evidence = _evidence(random.Random(1))
        t_similar = best_of(lambda: similar_cases(session, alert))
        out["similar_cases_s"] = round(t_similar, 4)
        print(f"similar cases over {args.cases} cases: {t_similar * 1000:.0f} ms")
    print(json.dumps({"assets": args.assets, "rows": args.rows, **out}))
    keep.dispose()


if __name__ == "__main__":
    main()
