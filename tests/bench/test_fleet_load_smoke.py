"""Smoke test of bench/fleet_load.py: a tiny fleet through a real broker into `cloud serve`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "fleet_load.py"

pytestmark = pytest.mark.integration


def test_a_tiny_fleet_runs_end_to_end_and_reports_every_figure(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--assets", "40", "--interval", "1", "--duration", "8",
         "--faults", "2", "--fault-after", "2", "--drain-s", "15", "--ingest-workers", "2",
         "--scoring-workers", "1"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    assert "configuration" in out.stdout and "kept up" in out.stdout
    assert "--scoring-workers" in out.stdout  # skipped or used, it says which
    result = json.loads(out.stdout.strip().splitlines()[-1])
    (run,) = result["results"]
    assert run["config"]["ingest_workers"] == 2
    assert run["backfill_records"] == 40 * 30
    assert run["stored"] == run["published"] > run["backfill_records"]  # nothing lost
    assert run["ingest_lag_s"]["end"] is not None and run["ingest_lag_s"]["end"] >= 0
    assert run["round_s"]["rounds"] > 0
    assert run["alert_latency_s"]["faulty"] == 2
    assert {"service", "ingest-0", "ingest-1", "mosquitto", "publisher"} <= set(run["rss_mb"])
    assert all(v > 0 for v in run["rss_mb"].values())
    assert isinstance(run["kept_up"], bool) and run["why"]


def test_scoring_workers_score_a_postgresql_fleet_and_are_measured_per_process() -> None:
    from ironwatch_app.local_servers import Postgres

    if not Postgres.available():
        pytest.skip("PostgreSQL is not installed")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--assets", "40", "--interval", "1", "--duration", "8",
         "--faults", "2", "--fault-after", "2", "--drain-s", "15", "--db", "postgres",
         "--scoring-workers", "2"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    assert "cloud score --workers N" in out.stdout
    result = json.loads(out.stdout.strip().splitlines()[-1])
    (run,) = result["results"]
    assert run["config"]["scoring_workers"] == 2
    assert run["scoring_exit_code"] is None and run["service_exit_code"] is None
    assert run["stored"] == run["published"] > run["backfill_records"]
    # Rounds come from the workers' metrics ports: the service itself does not score.
    assert run["round_s"]["rounds"] > 0 and run["round_s"]["max"] >= 0
    assert 0 < run["round_s"]["steady_rounds"] <= run["round_s"]["rounds"]
    assert {"service", "ingest-0", "score-supervisor", "score-0", "score-1"} <= set(run["rss_mb"])
    assert run["cpu_pct"]["score-0"] > 0 and run["cpu_pct"]["score-1"] > 0
