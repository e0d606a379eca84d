"""Evidence reading: the pipeline's shape, simpler shapes, and nothing lost on the way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.dashboard._format import fmt_duration, fmt_hours, fmt_hours_range
from cloud.dashboard._views import Deadline
from cloud.dashboard.evidence import read_evidence


def test_pipeline_shape() -> None:
    ev = read_evidence(
        {
            "point": "de",
            "persistence": {"over_threshold": 4, "of_last": 6, "needed": 4},
            "moved_features": [
                {"feature": "kurtosis", "value": 6.0, "baseline_median": 3.0, "z": 4.0},
                {"feature": "env_bpfo_ms2", "value": 0.5, "baseline_median": 0.1, "z": -8.0},
            ],
            "spectral_peaks": [
                {
                    "fault": "imbalance",
                    "peak_1x_hz": 24.7,
                    "peak_1x_ms2": 1.2,
                    "ratio_1x": 9.0,
                    "ratio_2x_to_1x": 0.1,
                },
                {"fault": "bearing_inner_race", "peak_1x_hz": 133.0, "peak_2x_hz": 266.0},
                {"fault": "misalignment", "ratio_2x_to_1x": 0.2363},
            ],
            "diagnosis": {"fault": "imbalance", "confidence": 0.7},
            "models": {"anomaly": "FleetBaseline"},
            "iso_zone": "C",
        }
    )
    assert [f.name for f in ev.features] == ["env_bpfo_ms2", "kurtosis"]  # by |z|
    assert ev.features[1].baseline == 3.0
    assert [(p.label, p.spectrum) for p in ev.peaks] == [
        ("1× imbalance", "spectrum"),
        ("1× bearing inner race", "envelope"),
        ("2× bearing inner race", "envelope"),
        ("misalignment (2x/1x = 0.236)", "spectrum"),
    ]
    assert ev.peaks[0].ratio == 9.0 and ev.peaks[0].amplitude == 1.2
    assert ev.persistence == "4 of the last 6 windows over threshold (4 needed)"
    assert ev.point == "de" and ev.diagnosis["fault"] == "imbalance"
    assert ev.threshold is None
    assert ev.other == {"iso_zone": "C"}  # shown verbatim, not dropped


def test_simple_shapes() -> None:
    ev = read_evidence(
        {
            "z_scores": {"kurtosis": 5.0, "crest_factor": float("nan")},
            "peaks": {"BPFO": {"freq_hz": 88.0, "amplitude": 0.4}},
            "threshold": 4.0,
        }
    )
    assert ev.features[0].name == "kurtosis" and ev.features[1].z is None
    assert ev.peaks[0].label == "BPFO" and ev.peaks[0].freq_hz == 88.0
    assert ev.threshold == 4.0 and ev.other == {}


def test_empty_and_junk() -> None:
    assert read_evidence(None).features == []
    ev = read_evidence({"moved_features": "oops", "spectral_peaks": [1, 2], "persistence": 3})
    assert ev.features == [] and ev.peaks == [] and ev.persistence is None
    assert ev.other == {"persistence": 3}


def test_deadlines_and_durations() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    late = Deadline.of(now - timedelta(minutes=90), now)
    assert late.overdue and late.text == "overdue by 1 h 30 min"
    soon = Deadline.of(now + timedelta(days=3, hours=2), now)
    assert not soon.overdue and soon.text == "in 3 d 2 h"
    assert not Deadline.of(now - timedelta(hours=1), now, met=True).overdue
    assert fmt_duration(42) == "42 s" and fmt_duration(3600) == "1 h"
    assert fmt_hours(10) == "10 h" and fmt_hours(120) == "5.0 d" and fmt_hours(None) == "–"
    assert fmt_hours_range(40, 300, 120) == "1.7 – 12.5 d"
    assert fmt_hours_range(4, 30, 12) == "4 – 30 h"
    # An open-ended interval: P90 beyond the model's horizon.
    assert fmt_hours_range(40, None, 120) == "1.7 d – beyond horizon"
    assert fmt_hours_range(4, None, 12) == "4 h – beyond horizon"
