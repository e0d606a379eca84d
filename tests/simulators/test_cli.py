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
