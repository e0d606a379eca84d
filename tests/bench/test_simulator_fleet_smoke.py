"""Smoke test of bench/simulator_fleet.py: the quick fleet runs and prints a complete JSON line."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "simulator_fleet.py"

SHARES = (
    "detected_share",
    "detected_share_7d",
    "rul_within_20pct_share",
    "rul_interval_coverage",
    "iso_detected_share_7d",
)
NON_NEGATIVE = (
    "median_lead_days",
    "median_delay_after_onset_h",
    "false_alarms_per_asset_year",
    "iso_median_lead_days",
    "iso_false_alarms_per_asset_year",
    "lead_ratio_vs_iso",
    "exposure_asset_years",
    "elapsed_s",
)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_simulator_fleet", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses resolve annotations through sys.modules while the module executes.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load()


def test_quick_run_prints_one_json_line_with_sane_figures(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    returned = bench.main(["--quick", "--workers", "1", "--seed", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) > 3, "a readable table comes before the JSON line"
    figures = json.loads(lines[-1])
    assert figures == returned

    assert figures["bench"] == "simulator_fleet"
    assert figures["runs"] == 3 and isinstance(figures["runs"], int)
    assert figures["healthy_machines"] == 2
    assert isinstance(figures["snapshots"], int) and figures["snapshots"] > 0
    assert isinstance(figures["rul_points"], int) and figures["rul_points"] >= 0
    assert isinstance(figures["false_alarms"], int) and figures["false_alarms"] >= 0
    assert isinstance(figures["aims_met"], bool)
    for key in SHARES:
        value = figures[key]
        # A share is undefined (null) only when there is nothing to share out.
        assert value is None or (isinstance(value, float | int) and 0.0 <= value <= 1.0), key
    for key in NON_NEGATIVE:
        value = figures[key]
        assert value is None or (isinstance(value, float | int) and value >= 0.0), key
    assert figures["detected_share"] is not None
    assert figures["detected_share_7d"] <= figures["detected_share"]
    assert figures["exposure_asset_years"] > 0
    assert figures["elapsed_s"] < 120

    # The default profile is realistic: realism on, the same fleet off beside it.
    assert figures["profile"] == "realistic" and figures["realism"] is True
    off = figures["realism_off"]
    assert set(bench.COMPARED) <= set(off)
    for key in SHARES:
        value = off.get(key)
        assert value is None or 0.0 <= value <= 1.0, key
    assert off["first_alert_on_failing_point_share"] is None  # no multi-point shafts when off
    assert isinstance(figures["multipoint_runs"], int) and figures["multipoint_runs"] >= 0
    share = figures["first_alert_on_failing_point_share"]
    assert share is None or 0.0 <= share <= 1.0
    assert figures["total_elapsed_s"] >= figures["elapsed_s"]


def test_realism_changes_the_tricks_not_the_machines(bench: ModuleType) -> None:
    config = bench.FleetConfig(machines=6, healthy=6, seed=3)
    plain = bench.make_specs(config)
    real = bench.make_specs(bench.FleetConfig(machines=6, healthy=6, seed=3, realism=True))
    assert [(s.fault, s.speed_rpm, s.onset_h, s.failure_h, s.seed) for s in real] == [
        (s.fault, s.speed_rpm, s.onset_h, s.failure_h, s.seed) for s in plain]
    assert not any(s.slip or s.band_limited or s.load_steps or s.points for s in plain)
    assert all(s.slip and s.band_limited and len(s.load_steps) == 1 for s in real)
    assert any(s.points for s in real)
    # A multi-point run has one feature stream per point, and its failing point known.
    spec = next(s for s in real if s.points)
    quick = bench.FleetConfig(machines=6, healthy=6, seed=3, snapshot_s=0.05,
                              failure_days=(30.0, 36.0), healthy_days=30.0, realism=True)
    end_age, feats = bench.simulate(spec, quick)
    assert feats.shape[:2] == (4, end_age.size)


def test_fleet_config_refuses_a_life_shorter_than_commissioning(bench: ModuleType) -> None:
    with pytest.raises(ValueError, match="commissioning"):
        bench.FleetConfig(failure_days=(5.0, 10.0))


def test_persistence_needs_k_of_n_and_clears_only_at_the_clear_level(bench: ModuleType) -> None:
    import numpy as np

    from cloud.pipeline import PersistenceRule

    flags = np.array([1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0], dtype=bool)
    state = bench.persistent(flags, PersistenceRule(k=3, n=5, clear_at=0))
    # Raised at the third flag of five; held while any flag is in the window; one episode.
    assert state.tolist() == [False, False, False, True, True, True, True, True, False,
                              False, False, False]
