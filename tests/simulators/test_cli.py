"""`ironwatch sim describe` and argument handling, in process."""

from __future__ import annotations

import json

import pytest

from ironwatch_app.cli import main


def test_describe_prints_physics_and_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sim", "describe", "--fault", "outer_race", "--onset-h", "100",
               "--failure-h", "400", "--time-scale", "4800", "--bearing", "6205"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["defect_frequencies_hz"]["bpfo"] == pytest.approx(3.5848 * 1480 / 60, rel=1e-3)
    truth = out["ground_truth"]
    assert (truth["onset_time_h"], truth["failure_time_h"]) == (100.0, 400.0)
    assert truth["wall_s_to_failure"] == pytest.approx(300.0)
    zones = truth["expected_zone_entry_h"]
    assert zones["C"] > 100 + 0.75 * 300 and zones["D"] <= 400.5


def test_bad_spec_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sim", "describe", "--onset-h", "500", "--failure-h", "100"])
    assert rc == 2
    assert "failure_h" in capsys.readouterr().err


def test_describe_reports_the_realism_in_its_ground_truth(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(["sim", "describe", "--spec", "shaft_four_bearings", "--defect-factor", "0.975",
               "--burst-period", "60"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["defect_factor"] == 0.975
    kinematic = out["kinematic_defect_frequencies_hz"]["bpfo"]
    assert out["defect_frequencies_hz"]["bpfo"] == pytest.approx(0.975 * kinematic)
    assert out["channels"] == ["nde_motor", "de_motor", "de_fan", "nde_fan"]
    assert out["failing_point"] == "nde_motor"
    assert out["transmission_gains"] == [1.0, 0.3, 0.1, 0.1]
    assert out["sample_rate_hz"] == 20_000.0 and out["band_limited"] is True
    assert [s["at_h"] for s in out["load_steps"]] == [60.0, 150.0]
    assert out["spec"]["sensor"]["burst_period_s"] == 60.0


def test_an_implausible_defect_factor_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sim", "describe", "--spec", "shaft_four_bearings", "--defect-factor", "2.0"])
    assert rc == 2
    assert "defect_factor" in capsys.readouterr().err
