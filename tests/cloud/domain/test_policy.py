"""The priority rule, service-level deadlines, tiers and the planned date."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cloud.domain import InvalidInputError, ServiceLevelPolicy, decide_priority, load_policy
from cloud.domain.catalogue import FALLBACK_MODE, load_catalogue
from cloud.domain.policy import DEFAULT_POLICY
from cloud.domain.workorders import planned_date

from .conftest import T0


@pytest.mark.parametrize(
    ("severity", "zone", "confidence", "rul_low_h", "expected", "warrants"),
    [
        ("critical", None, None, None, "P0", True),
        ("alarm", None, None, None, "P1", True),
        ("warning", None, None, None, "P2", True),
        ("advisory", None, None, None, "P3", False),
        # Low confidence relaxes the severity-derived base one step...
        ("critical", None, 0.3, None, "P1", True),
        ("warning", None, 0.3, None, "P3", True),
        # ...but physical evidence (ISO zone, RUL) sets floors regardless.
        ("critical", "D", 0.3, None, "P1", True),
        ("warning", "D", None, None, "P1", True),
        ("advisory", "C", None, None, "P2", True),
        ("advisory", None, None, 20.0, "P0", True),
        ("warning", None, 0.2, 50.0, "P1", True),
        ("advisory", None, None, 100.0, "P2", True),
        ("advisory", None, None, 1000.0, "P3", False),
        ("alarm", "A", 0.9, 5000.0, "P1", True),
    ],
)
def test_priority_rule(
    severity: str,
    zone: str | None,
    confidence: float | None,
    rul_low_h: float | None,
    expected: str,
    warrants: bool,
) -> None:
    decision = decide_priority(
        severity=severity,  # type: ignore[arg-type]
        iso_zone=zone,  # type: ignore[arg-type]
        confidence=confidence,
        rul_low_h=rul_low_h,
    )
    assert decision.priority == expected
    assert decision.warrants_work_order is warrants
    assert decision.reasons[0].startswith(f"severity {severity}")


@pytest.mark.parametrize(
    ("priority", "tier", "respond_h", "resolve_h"),
    [
        ("P0", "strategic", 1, 24),
        ("P0", "key", 2, 24),
        ("P0", "standard", 2, 24),
        ("P1", "strategic", 1, 48),
        ("P1", "key", 4, 48),
        ("P2", "key", 4, 72),
        ("P2", "standard", 8, 72),
        ("P3", "standard", 12, 168),
        ("P3", "key", 4, 168),
    ],
)
def test_deadlines_take_the_tighter_of_priority_and_tier(
    priority: str, tier: str, respond_h: float, resolve_h: float
) -> None:
    policy = DEFAULT_POLICY
    assert policy.respond_within(priority, tier) == timedelta(hours=respond_h)  # type: ignore[arg-type]
    assert policy.resolve_within(priority) == timedelta(hours=resolve_h)  # type: ignore[arg-type]


def test_policy_file_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "sla.toml"
    path.write_text(
        "rul_p0_h = 48\n[priorities.P0]\nrespond_h = 0.5\nresolve_h = 8\n"
        "[tier_respond_h]\nstrategic = 0.25\nkey = 2\nstandard = 12\n"
    )
    policy = load_policy(path)
    assert policy.respond_within("P0", "strategic") == timedelta(minutes=15)
    assert policy.resolve_within("P0") == timedelta(hours=8)
    assert policy.resolve_within("P1") == timedelta(hours=48)  # untouched default
    assert (
        decide_priority(
            severity="warning", iso_zone=None, confidence=None, rul_low_h=40, policy=policy
        ).priority
        == "P0"
    )


def test_bad_policy_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sla.toml"
    path.write_text("[priorities.P0]\nrespond_h = -1\nresolve_h = 8\n")
    with pytest.raises(InvalidInputError):
        load_policy(path)
    with pytest.raises(InvalidInputError):
        load_policy(tmp_path / "missing.toml")
    assert load_policy(None) == ServiceLevelPolicy()


def test_planned_date_is_lead_time_before_failure_and_never_past() -> None:
    resolve_by = T0 + timedelta(hours=72)
    assert planned_date(now=T0, resolve_by=resolve_by, rul_low_h=None, lead_time_h=8) == (
        T0 + timedelta(hours=64)
    )
    assert planned_date(now=T0, resolve_by=resolve_by, rul_low_h=50, lead_time_h=24) == (
        T0 + timedelta(hours=26)
    )
    assert planned_date(now=T0, resolve_by=resolve_by, rul_low_h=10, lead_time_h=48) == T0


def test_default_catalogue_has_every_required_mode_with_iso_codes() -> None:
    catalogue = load_catalogue()
    for mode in (
        "bearing_outer_race",
        "bearing_inner_race",
        "bearing_ball",
        "bearing_cage",
        "imbalance",
        "misalignment",
        "looseness",
        "overheating",
        "unknown_anomaly",
    ):
        entry = catalogue.lookup(mode)
        assert entry.id == mode
        assert entry.iso14224_mode in {"VIB", "NOI", "STD", "OHE", "UNK"}
        assert entry.actions
    assert catalogue.lookup("BPFO").id == "bearing_outer_race"
    assert catalogue.lookup("something-new").id == FALLBACK_MODE


def test_catalogue_file_needs_a_fallback(tmp_path: Path) -> None:
    path = tmp_path / "modes.toml"
    path.write_text('[modes.imbalance]\nname = "x"\niso14224_mode = "VIB"\n')
    with pytest.raises(InvalidInputError):
        load_catalogue(path)


def test_escalation_ladder_defaults_and_policy_file(tmp_path: Path) -> None:
    start, deadline = T0, T0 + timedelta(hours=4)
    fires = {lv.name: lv.fires_at(start, deadline) for lv in DEFAULT_POLICY.escalation_levels}
    assert fires == {
        "warning": T0 + timedelta(hours=3),
        "supervisor": deadline,
        "manager": T0 + timedelta(hours=6),
    }
    path = tmp_path / "policy.toml"
    path.write_text(
        "[[escalation_levels]]\n"
        'name = "heads_up"\nat_fraction = 0.5\nnotify = ["service_desk"]\n'
        'deadlines = ["resolution"]\n'
        "[[escalation_levels]]\n"
        'name = "director"\nafter_deadline_h = 8\nnotify = ["director"]\n',
        encoding="utf-8",
    )
    levels = load_policy(path).escalation_levels
    assert [(lv.name, lv.is_warning, lv.deadlines) for lv in levels] == [
        ("heads_up", True, ("resolution",)),
        ("director", False, ("response", "resolution")),
    ]
    assert levels[1].fires_at(start, deadline) == deadline + timedelta(hours=8)


@pytest.mark.parametrize(
    "level",
    [
        'name = "x"\nnotify = ["manager"]\n',  # no time
        'name = "x"\nat_fraction = 1.0\nafter_deadline_h = 1\n',  # two times
        'name = "x"\nat_fraction = -1\n',
        'name = "Boss Level"\nat_fraction = 1\n',
        'name = "x"\nat_fraction = 1\ndeadlines = []\n',
        'name = "x"\nat_fraction = 1\nnotify = ["Customer:All"]\n',
        'name = "x"\nat_fraction = 1\n[[escalation_levels]]\nname = "x"\nat_fraction = 2\n',
    ],
)
def test_bad_escalation_levels_are_refused(tmp_path: Path, level: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[[escalation_levels]]\n" + level, encoding="utf-8")
    with pytest.raises(InvalidInputError, match="invalid SLA policy"):
        load_policy(path)
