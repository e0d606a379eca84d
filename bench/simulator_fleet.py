"""Simulator run-to-failure fleet: detection lead time, false alarms per asset-year, RUL accuracy.

Usage: python bench/simulator_fleet.py [--machines 40] [--healthy N] [--seed 0] [--quick]
       [--profile realistic|plain]

Profile ``realistic`` (the default) runs the fleet twice in one go: with reality's tricks on
(`simulators.fleet.realistic`: defect lines off kinematic by a seeded slip factor,
band-limited sensors at 12/20/25.6 kHz, one load step per machine, a third of the machines
with four measurement points on one shaft and the failing bearing's vibration transmitted to
the others), and the same machines with them off as the baseline. ``plain`` runs only the
latter. On multi-point machines each point is scored as its own stream; the machine alarms
when any point does, and the alert is localised to the point whose score is most anomalous
at that window.

Each machine (bearing faults: outer race, inner race, ball; plus healthy machines) is rendered
by `simulators.machine.Machine` as one contiguous waveform whose ``time_scale`` makes each
snapshot of ``--snapshot-s`` seconds cover ``--spacing-h`` hours of machine life, so snapshot k
shows the machine aged between k and k+1 spacings (damage changes by a few % within one). The
features of every snapshot come from `models.features.extract_features`; the first
``commissioning_records`` windows of each machine commission `models.anomaly.FleetBaseline`
(calibrated to 1 false window per asset-year at the snapshot spacing), every later window is
scored in one call, and the cloud's `PersistenceRule` (k of the last n windows, hysteresis)
turns flags into alarm episodes. A window is time-stamped at its end age.

Figures: lead = failure − first raised window ending after onset (a missed run counts 0);
false alarms = episodes on healthy machines plus episodes raised before onset on degrading
ones, per asset-year of scored exposure; RUL = `models.rul.ExponentialDegradation` on the ISO
velocity since the episode onset (as the cloud does), at every window in the last 30 days
after detection, against the ground truth. Baseline: the ISO 10816-3 zone C velocity alarm
with the same persistence rule.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cloud.pipeline import PersistenceRule

# The cloud's model glue: the detector's settings, and a RUL trend needs RUL_MIN_POINTS
# readings from a little before onset.
from cloud.pipeline._model_suite import (
    FALSE_ALARMS_PER_YEAR,
    MIN_SCALE_FRACTION,
    RUL_LEAD_IN_S,
    RUL_MIN_POINTS,
    WINDOW_SPACING_S,
)
from models.anomaly import FleetBaseline
from models.diagnosis import ISO_10816_3_BOUNDARIES_MMS
from models.features import FEATURE_NAMES, extract_features
from models.rul import ExponentialDegradation
from simulators.fleet import realistic
from simulators.machine import DEFAULT_SAMPLE_RATE_HZ, Machine
from simulators.spec import BEARINGS, FaultMode, MachineSpec

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

BEARING_FAULTS = (FaultMode.OUTER_RACE, FaultMode.INNER_RACE, FaultMode.BALL)
SPEEDS_RPM = (990.0, 1480.0, 1780.0, 2970.0, 3560.0)
HOURS_PER_YEAR = 365.25 * 24.0
AIM_LEAD_DAYS = 7.0
AIM_DETECTED_SHARE = 0.95
AIM_FALSE_ALARMS_PER_YEAR = 1.0
RUL_HORIZON_DAYS = 30.0
RUL_TOLERANCE = 0.2
HEALTH_INDICATOR = "velocity_rms_mms"
#: Snapshots rendered per `Machine.render` call: fewer Python calls, bounded memory.
RENDER_CHUNK = 32


@dataclass(frozen=True)
class FleetConfig:
    """What to simulate: fleet size, snapshot timing, lifetimes; validated in `__post_init__`."""

    machines: int = 40
    healthy: int = 40
    seed: int = 0
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ
    snapshot_s: float = 0.5
    spacing_h: float = 6.0
    failure_days: tuple[float, float] = (30.0, 120.0)
    healthy_days: float = 120.0
    commissioning_records: int = 30
    workers: int = 1
    realism: bool = False

    def __post_init__(self) -> None:
        lo, hi = self.failure_days
        if self.machines < 1 or self.healthy < 0 or self.workers < 1:
            raise ValueError("need machines >= 1, healthy >= 0, workers >= 1")
        if self.snapshot_s <= 0 or self.spacing_h <= 0 or not 0 < lo <= hi:
            raise ValueError("snapshot_s, spacing_h and failure_days must be positive")
        if lo * 24.0 < (self.commissioning_records + 8) * self.spacing_h:
            raise ValueError("shortest life must exceed commissioning plus a week of scoring")

    @property
    def commissioning_h(self) -> float:
        return self.commissioning_records * self.spacing_h

    @property
    def time_scale(self) -> float:
        """Machine seconds per waveform second: one snapshot spans one spacing of life."""
        return self.spacing_h * 3600.0 / self.snapshot_s


@dataclass
class Run:
    """One machine's simulated history: window end ages (h), features per point, ground truth.

    ``over``/``raised`` are the machine's (any point); ``point`` is the point an alert is
    localised to (the most anomalous one at the first raised window; 0 before any).
    """

    spec: MachineSpec
    end_age_h: FloatArray
    point_features: FloatArray  # (points, windows, FEATURE_NAMES)
    onset_h: float = math.inf
    failure_h: float = math.inf
    over: BoolArray = field(default_factory=lambda: np.zeros(0, bool))
    raised: BoolArray = field(default_factory=lambda: np.zeros(0, bool))
    iso_over: BoolArray = field(default_factory=lambda: np.zeros(0, bool))
    iso_raised: BoolArray = field(default_factory=lambda: np.zeros(0, bool))
    point: int = 0
    first_alert_point: int | None = None

    @property
    def degrading(self) -> bool:
        return self.spec.fault is not FaultMode.NONE

    @property
    def points(self) -> int:
        return int(self.point_features.shape[0])

    @property
    def failing_point(self) -> int:
        return self.spec.point_ids.index(self.spec.failing_point_id) if self.spec.points else 0

    @property
    def features(self) -> FloatArray:
        """Features of the point alerts are localised to, (windows, FEATURE_NAMES)."""
        return self.point_features[self.point]

    @property
    def velocity_mms(self) -> FloatArray:
        return self.features[:, FEATURE_NAMES.index(HEALTH_INDICATOR)]


def make_specs(config: FleetConfig) -> list[MachineSpec]:
    """Degrading machines (bearing faults, random life and onset) then healthy ones, seeded."""
    rng = np.random.default_rng(config.seed)
    names = sorted(BEARINGS)
    specs = []
    for i in range(config.machines + config.healthy):
        degrading = i < config.machines
        start = float(rng.uniform(0.0, 2000.0))
        life_h = float(rng.uniform(*config.failure_days)) * 24.0
        # Fault phase (onset → failure) is 30–70 % of the observed life, and onset leaves at
        # least two days of healthy scoring after commissioning.
        phase_h = min(float(rng.uniform(0.3, 0.7)) * life_h, life_h - config.commissioning_h - 48)
        fault = BEARING_FAULTS[i % len(BEARING_FAULTS)] if degrading else FaultMode.NONE
        specs.append(MachineSpec(
            machine_id=f"{'deg' if degrading else 'ok'}-{i:03d}",
            speed_rpm=float(rng.choice(SPEEDS_RPM)),
            load_pct=float(rng.uniform(40.0, 100.0)),
            bearing=BEARINGS[names[int(rng.integers(len(names)))]],
            iso_group=int(rng.integers(1, 3)),
            foundation="rigid" if rng.random() < 0.7 else "flexible",
            ambient_c=float(rng.uniform(15.0, 35.0)),
            fault=fault,
            onset_h=start + life_h - phase_h,
            failure_h=start + life_h,
            start_age_h=start,
            time_scale=config.time_scale,
            seed=int(rng.integers(2**31)),
            healthy_severity=float(rng.uniform(0.35, 0.8)),
        ))
    if config.realism:
        # Drawn from their own stream: the machines are the same with realism on or off.
        tricks = np.random.default_rng([config.seed, 1])
        specs = [realistic(s, tricks, end_h=_end_h(s, config)) for s in specs]
    return specs


def simulate(spec: MachineSpec, config: FleetConfig) -> tuple[FloatArray, FloatArray]:
    """Render every snapshot of one machine's life and extract features, chunk by chunk.

    Returns window end ages and features of shape (points, windows, FEATURE_NAMES). The shaft
    speed given to the features is the machine's speed at the window (a speed reading).
    """
    fs = spec.sample_rate_hz or config.sample_rate_hz
    points = len(spec.points) or 1
    machine = Machine(spec, sample_rate_hz=fs, channels=points)
    bearings = [p.bearing for p in spec.points] or [spec.bearing]
    end_h = spec.failure_h if spec.fault is not FaultMode.NONE else (
        spec.start_age_h + config.healthy_days * 24.0
    )
    # Windows end strictly before failure: a failed machine is no longer scored.
    windows = math.ceil((end_h - spec.start_age_h) / config.spacing_h) - 1
    n = round(config.snapshot_s * fs)
    mid_age = spec.start_age_h + config.spacing_h * (np.arange(windows) + 0.5)
    shaft_hz = np.array([spec.operating_point(float(a))[0] for a in mid_age]) / 60.0
    blocks: list[list[FloatArray]] = [[] for _ in range(points)]
    for first in range(0, windows, RENDER_CHUNK):
        count = min(RENDER_CHUNK, windows - first)
        x = machine.render(n * count).reshape(points, count, n)
        for p in range(points):
            feats = extract_features(
                x[p], fs, shaft_hz=shaft_hz[first : first + count], bearing=bearings[p]
            )
            blocks[p].append(np.column_stack([feats[name] for name in FEATURE_NAMES]))
    end_age = spec.start_age_h + config.spacing_h * np.arange(1, windows + 1, dtype=np.float64)
    return end_age, np.stack([np.vstack(b) for b in blocks])


def _simulate_args(args: tuple[MachineSpec, FleetConfig]) -> tuple[FloatArray, FloatArray]:
    return simulate(*args)


def simulate_fleet(specs: list[MachineSpec], config: FleetConfig) -> list[Run]:
    """All machines, over `config.workers` processes (longest lives first for balance)."""
    order = sorted(range(len(specs)), key=lambda i: specs[i].start_age_h - _end_h(specs[i], config))
    jobs = [(specs[i], config) for i in order]
    if config.workers == 1:
        results = [_simulate_args(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=config.workers) as pool:
            results = list(pool.map(_simulate_args, jobs))
    runs: list[Run | None] = [None] * len(specs)
    for i, (end_age, feats) in zip(order, results, strict=True):
        s = specs[i]
        degrading = s.fault is not FaultMode.NONE
        runs[i] = Run(
            s, end_age, feats,
            onset_h=s.onset_h if degrading else math.inf,
            failure_h=s.failure_h if degrading else math.inf,
        )
    return [r for r in runs if r is not None]


def _end_h(spec: MachineSpec, config: FleetConfig) -> float:
    if spec.fault is not FaultMode.NONE:
        return spec.failure_h
    return spec.start_age_h + config.healthy_days * 24.0


def persistent(flags: BoolArray, rule: PersistenceRule) -> BoolArray:
    """Alarm state per window under k-of-n persistence with hysteresis (the cloud's rule)."""
    c = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    idx = np.arange(flags.size)
    count = c[idx + 1] - c[np.maximum(idx + 1 - rule.n, 0)]
    state = np.zeros(flags.size, bool)
    raised = False
    for i, k in enumerate(count.tolist()):
        if k >= rule.k:
            raised = True
        elif k <= rule.clear_at:
            raised = False
        state[i] = raised
    return state


def detect(runs: list[Run], config: FleetConfig, rule: PersistenceRule) -> FleetBaseline:
    """Commission on each stream's first windows, score the rest at once, apply persistence.

    A stream is one point of one machine; the machine is raised while any point is, and the
    alert goes to the point whose score is lowest (most anomalous) at the first raised window.
    """
    c = config.commissioning_records
    streams = [(i, p) for i, r in enumerate(runs) for p in range(r.points)]
    ids = np.concatenate([np.full(c, k) for k in range(len(streams))])
    # As the cloud builds it, but calibrated to this benchmark's window spacing.
    detector = FleetBaseline(
        false_alarms_per_year=FALSE_ALARMS_PER_YEAR,
        scoring_interval_s=config.spacing_h * 3600.0,
        min_scale_fraction=MIN_SCALE_FRACTION,
    )
    detector.fit(
        np.vstack([runs[i].point_features[p, :c] for i, p in streams]), asset_ids=ids
    )
    lengths = [runs[i].point_features.shape[1] - c for i, _ in streams]
    scored_ids = np.repeat(np.arange(len(streams)), lengths)
    decision = detector.decision_function(
        np.vstack([runs[i].point_features[p, c:] for i, p in streams]), asset_ids=scored_ids
    )
    # As the cloud: a row the detector cannot score (NaN) counts as over the threshold.
    decision = np.nan_to_num(decision, nan=-1.0)
    over = decision < 0
    bounds = np.cumsum([0, *lengths])
    per_run: dict[int, list[int]] = {}
    for k, (i, _) in enumerate(streams):
        per_run.setdefault(i, []).append(k)
    velocity = FEATURE_NAMES.index(HEALTH_INDICATOR)
    for i, r in enumerate(runs):
        ks = per_run[i]
        d = np.stack([decision[bounds[k] : bounds[k + 1]] for k in ks])
        raised = np.stack([persistent(over[bounds[k] : bounds[k + 1]], rule) for k in ks])
        r.over = np.any(d < 0, axis=0)
        r.raised = np.any(raised, axis=0)
        limits = ISO_10816_3_BOUNDARIES_MMS[(r.spec.iso_group, r.spec.foundation)]
        iso_over = r.point_features[:, c:, velocity] >= limits[1]
        r.iso_over = np.any(iso_over, axis=0)
        r.iso_raised = np.any(np.stack([persistent(o, rule) for o in iso_over]), axis=0)
        t = r.end_age_h[c:]
        hit = np.flatnonzero(r.raised & (t > r.onset_h))
        if hit.size:
            j = int(hit[0])
            # Among the points raised at that window, the one whose score is lowest.
            candidates = np.where(raised[:, j], d[:, j], np.inf)
            r.first_alert_point = r.point = int(np.argmin(candidates))
    return detector


@dataclass(frozen=True)
class AlarmFigures:
    """Lead times of degrading runs and false-alarm episodes for one alarm method."""

    lead_days: FloatArray  # per degrading run; 0 when not detected before failure
    detected: BoolArray
    delay_after_onset_h: FloatArray  # NaN when not detected
    false_alarms: int
    false_alarms_before_onset: int
    exposure_years: float
    flag_rate: float  # share of healthy windows over the threshold, before persistence
    # Realism: false episodes raised at or after the machine's load step, and detections
    # whose first raised window falls within the persistence window after a step.
    false_alarms_after_step: int = 0
    detections_at_step: int = 0

    @property
    def false_alarms_per_asset_year(self) -> float:
        return self.false_alarms / self.exposure_years if self.exposure_years > 0 else math.nan


def alarm_figures(runs: list[Run], config: FleetConfig, *, iso: bool) -> AlarmFigures:
    """Lead time per degrading run; false episodes (healthy, or before onset) per asset-year."""
    c = config.commissioning_records
    leads, detected, delays = [], [], []
    false_alarms = before_onset = flags = windows = after_step = at_step = 0
    for r in runs:
        state = r.iso_raised if iso else r.raised
        t = r.end_age_h[c:]
        starts = state & ~np.r_[False, state[:-1]]
        healthy_part = t <= r.onset_h
        episodes = int(np.sum(starts & healthy_part))
        step_h = min((s.at_h for s in r.spec.load_steps), default=math.inf)
        after_step += int(np.sum(starts & healthy_part & (t >= step_h)))
        false_alarms += episodes
        before_onset += episodes if r.degrading else 0
        over = r.iso_over if iso else r.over
        flags += int(np.sum(over & healthy_part))
        windows += int(np.sum(healthy_part))
        if not r.degrading:
            continue
        hit = np.flatnonzero(state & ~healthy_part)
        if hit.size and 0.0 <= t[hit[0]] - step_h <= 5 * config.spacing_h:
            at_step += 1
        detected.append(hit.size > 0)
        leads.append((r.failure_h - t[hit[0]]) / 24.0 if hit.size else 0.0)
        delays.append(t[hit[0]] - r.onset_h if hit.size else math.nan)
    return AlarmFigures(
        np.asarray(leads), np.asarray(detected, bool), np.asarray(delays),
        false_alarms, before_onset, windows * config.spacing_h / HOURS_PER_YEAR,
        flags / windows if windows else math.nan, after_step, at_step,
    )


@dataclass(frozen=True)
class RulFigures:
    """RUL predictions against ground truth at every evaluated window."""

    truth_h: FloatArray
    median_h: FloatArray
    lower_h: FloatArray
    upper_h: FloatArray

    @property
    def within(self) -> BoolArray:
        return np.abs(self.median_h - self.truth_h) <= RUL_TOLERANCE * self.truth_h

    @property
    def covered(self) -> BoolArray:
        return (self.lower_h <= self.truth_h) & (self.truth_h <= self.upper_h)


def rul_figures(runs: list[Run], config: FleetConfig, rule: PersistenceRule) -> RulFigures:
    """Fit the RUL model at each window of the last 30 days after detection (causal history)."""
    c = config.commissioning_records
    lead_in = max(1, round(RUL_LEAD_IN_S / WINDOW_SPACING_S))
    truth, med, lo, hi = [], [], [], []
    for r in runs:
        if not r.degrading:
            continue
        t = r.end_age_h[c:]
        v = r.velocity_mms[c:]
        starts = np.flatnonzero(r.raised & ~np.r_[False, r.raised[:-1]])
        threshold = ISO_10816_3_BOUNDARIES_MMS[(r.spec.iso_group, r.spec.foundation)][2]
        hits = np.flatnonzero(r.raised & (t > r.onset_h))
        for j in range(hits[0] if hits.size else t.size, t.size):
            rul_true = r.failure_h - t[j]
            if rul_true > RUL_HORIZON_DAYS * 24.0:
                continue
            # No alarm, no RUL (as in the cloud): such a point counts as a miss.
            estimate = (math.nan, math.nan, math.nan)
            # The episode holding window j began at its raise minus the persistence window.
            first = max(0, starts[starts <= j][-1] - rule.n + 1 - lead_in)
            if r.raised[j] and j + 1 - first >= RUL_MIN_POINTS:
                try:
                    e = ExponentialDegradation(threshold=threshold).fit(
                        t[first : j + 1], v[first : j + 1]
                    ).predict_rul()
                    estimate = (e.median, e.lower, e.upper)
                except (ValueError, np.linalg.LinAlgError):
                    pass
            truth.append(rul_true)
            med.append(estimate[0])
            lo.append(estimate[1])
            hi.append(estimate[2])
    return RulFigures(*(np.asarray(a, dtype=np.float64) for a in (truth, med, lo, hi)))


def _share(x: BoolArray) -> float | None:
    return round(float(np.mean(x)), 4) if x.size else None


def _median(x: FloatArray) -> float | None:
    x = x[np.isfinite(x)]
    return round(float(np.median(x)), 2) if x.size else None


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def run_benchmark(config: FleetConfig) -> dict[str, Any]:
    """Simulate, detect, estimate RUL; return the figures (also printed as a table)."""
    t0 = time.perf_counter()
    rule = PersistenceRule()
    specs = make_specs(config)
    runs = simulate_fleet(specs, config)
    t_sim = time.perf_counter() - t0
    detector = detect(runs, config, rule)
    ours = alarm_figures(runs, config, iso=False)
    iso = alarm_figures(runs, config, iso=True)
    rul = rul_figures(runs, config, rule)
    elapsed = time.perf_counter() - t0

    snapshots = sum(r.point_features.shape[0] * r.point_features.shape[1] for r in runs)
    multi = [r for r in runs if r.points > 1 and r.degrading]
    localised = [r.first_alert_point == r.failing_point
                 for r in multi if r.first_alert_point is not None]
    ours_7d = ours.lead_days >= AIM_LEAD_DAYS
    iso_7d = iso.lead_days >= AIM_LEAD_DAYS
    ours_med, iso_med = _median(ours.lead_days), _median(iso.lead_days)
    result: dict[str, Any] = {
        "bench": "simulator_fleet",
        "realism": config.realism,
        "seed": config.seed,
        "runs": config.machines,
        "healthy_machines": config.healthy,
        "snapshots": snapshots,
        "snapshot_s": config.snapshot_s,
        "spacing_h": config.spacing_h,
        "persistence": f"{rule.k}of{rule.n}",
        "detected_share": _share(ours.detected),
        "detected_share_7d": _share(ours_7d),
        "median_lead_days": ours_med,
        "median_delay_after_onset_h": _median(ours.delay_after_onset_h),
        "false_alarms": ours.false_alarms,
        "false_alarms_before_onset": ours.false_alarms_before_onset,
        "false_alarms_after_load_step": ours.false_alarms_after_step,
        "detections_at_load_step": ours.detections_at_step,
        "window_flag_rate": round(ours.flag_rate, 6),
        "window_flag_budget": round(detector.p_alarm_, 6),
        "exposure_asset_years": round(ours.exposure_years, 3),
        "false_alarms_per_asset_year": round(ours.false_alarms_per_asset_year, 4),
        "rul_points": int(rul.truth_h.size),
        "rul_within_20pct_share": _share(rul.within),
        "rul_interval_coverage": _share(rul.covered),
        "iso_detected_share_7d": _share(iso_7d),
        "iso_median_lead_days": iso_med,
        "iso_false_alarms_per_asset_year": round(iso.false_alarms_per_asset_year, 4),
        "lead_ratio_vs_iso": (
            round(ours_med / iso_med, 2) if ours_med is not None and iso_med else None
        ),
        "multipoint_runs": len(multi),
        "multipoint_healthy_machines": sum(r.points > 1 and not r.degrading for r in runs),
        "multipoint_detected": len(localised),
        "first_alert_on_failing_point_share": _share(np.asarray(localised, bool)),
        "aims_met": bool(
            ours.detected.size
            and float(np.mean(ours_7d)) >= AIM_DETECTED_SHARE
            and ours.false_alarms_per_asset_year <= AIM_FALSE_ALARMS_PER_YEAR
        ),
        "simulate_s": round(t_sim, 1),
        "elapsed_s": round(elapsed, 1),
    }
    _print_table(runs, ours, iso, rul, result)
    return result


def _print_table(
    runs: list[Run], ours: AlarmFigures, iso: AlarmFigures, rul: RulFigures, res: dict[str, Any]
) -> None:
    degrading = [r for r in runs if r.degrading]
    print(
        f"simulator fleet: {res['runs']} degrading runs, {res['healthy_machines']} healthy, "
        f"{res['snapshots']} snapshots of {res['snapshot_s']} s every {res['spacing_h']} h, "
        f"persistence {res['persistence']}, {res['exposure_asset_years']} scored asset-years"
    )
    head = f"{'method':<22}{'fault':<12}{'runs':>5}{'det':>7}{'>=7d':>7}{'lead d':>8}{'FA/yr':>8}"
    print(head)
    print("-" * len(head))
    for name, fig in (("ironwatch anomaly", ours), ("ISO 10816-3 zone C", iso)):
        for fault in (*BEARING_FAULTS, None):
            sel = np.array([fault is None or r.spec.fault is fault for r in degrading])
            label = "all" if fault is None else str(fault)
            fa = _fmt(fig.false_alarms_per_asset_year, ".3f") if fault is None else ""
            print(
                f"{name:<22}{label:<12}{int(sel.sum()):>5}"
                f"{_fmt(_share(fig.detected[sel]), '.0%'):>7}"
                f"{_fmt(_share(fig.lead_days[sel] >= AIM_LEAD_DAYS), '.0%'):>7}"
                f"{_fmt(_median(fig.lead_days[sel]), '.1f'):>8}{fa:>8}"
            )
    print(
        f"false alarms (ironwatch): {ours.false_alarms} episodes, "
        f"{ours.false_alarms_before_onset} of them before onset on degrading runs, "
        f"{ours.false_alarms_after_step} raised after a load step; healthy "
        f"windows over threshold {ours.flag_rate:.2e} (budget {res['window_flag_budget']:.2e})"
    )
    print(
        f"RUL (last {RUL_HORIZON_DAYS:g} d after detection): {res['rul_points']} points, "
        f"within ±{RUL_TOLERANCE:.0%}: {_fmt(res['rul_within_20pct_share'], '.1%')}, "
        f"interval coverage: {_fmt(res['rul_interval_coverage'], '.1%')} (nominal 80 %)"
    )
    if rul.truth_h.size:
        err = (rul.median_h - rul.truth_h) / rul.truth_h
        print(f"RUL relative error median {_fmt(_median(err), '+.2f')}, "
              f"no estimate at {int(np.sum(~np.isfinite(rul.median_h)))} points")
    if res["multipoint_runs"]:
        print(
            f"multi-point shafts: {res['multipoint_runs']} degrading (and "
            f"{res['multipoint_healthy_machines']} healthy) with 4 points; first alert on the "
            f"failing bearing's point in "
            f"{_fmt(res['first_alert_on_failing_point_share'], '.0%')} of the "
            f"{res['multipoint_detected']} detected"
        )
    print(
        f"aim: >= {AIM_DETECTED_SHARE:.0%} of runs detected >= {AIM_LEAD_DAYS:g} d before "
        f"failure with <= {AIM_FALSE_ALARMS_PER_YEAR:g} false alarm per asset-year: "
        f"{'met' if res['aims_met'] else 'NOT met'}; elapsed {res['elapsed_s']} s"
    )


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: Figures shown side by side, realism on vs off.
COMPARED = (
    "detected_share",
    "detected_share_7d",
    "median_lead_days",
    "false_alarms_per_asset_year",
    "false_alarms_after_load_step",
    "detections_at_load_step",
    "window_flag_rate",
    "rul_points",
    "rul_within_20pct_share",
    "rul_interval_coverage",
    "iso_detected_share_7d",
    "iso_median_lead_days",
    "first_alert_on_failing_point_share",
)


def compare(on: dict[str, Any], off: dict[str, Any]) -> dict[str, Any]:
    """Realism-on figures with the realism-off run beside them, and on/off ratios."""

    def ratio(key: str) -> float | None:
        a, b = on.get(key), off.get(key)
        return round(a / b, 3) if a is not None and b else None

    print("\nrealism on vs off (same machines, same seeds)")
    print(f"{'figure':<38}{'on':>10}{'off':>10}")
    for key in COMPARED:
        print(f"{key:<38}{_fmt(on.get(key), '.3f'):>10}{_fmt(off.get(key), '.3f'):>10}")
    return {
        **on,
        "profile": "realistic",
        "realism_off": {key: off[key] for key in (*COMPARED, "elapsed_s")},
        "lead_ratio_on_off": ratio("median_lead_days"),
        "detected_7d_ratio_on_off": ratio("detected_share_7d"),
        "rul_coverage_ratio_on_off": ratio("rul_interval_coverage"),
        "total_elapsed_s": round(on["elapsed_s"] + off["elapsed_s"], 1),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse options, run, print the table and one JSON line; returns the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=None, help="degrading runs (40)")
    parser.add_argument("--healthy", type=int, default=None, help="healthy machines (= machines)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small fleet for smoke tests")
    parser.add_argument(
        "--profile", choices=("realistic", "plain"), default="realistic",
        help="realistic: realism on, with the same fleet realism off beside it; plain: off",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (all cores)")
    parser.add_argument("--snapshot-s", type=float, default=None, help="seconds per snapshot")
    parser.add_argument("--spacing-h", type=float, default=6.0, help="hours between snapshots")
    parser.add_argument("--healthy-days", type=float, default=None, help="healthy span (90)")
    args = parser.parse_args(argv)

    machines = args.machines or (3 if args.quick else 40)
    options: dict[str, Any] = {
        "machines": machines,
        "healthy": machines if args.healthy is None else args.healthy,
        "seed": args.seed,
        "spacing_h": args.spacing_h,
        "workers": args.workers or _workers(),
    }
    if args.quick:
        options |= {"snapshot_s": 0.125, "failure_days": (30.0, 36.0), "healthy_days": 30.0}
        if args.healthy is None:
            options["healthy"] = 2
    if args.snapshot_s is not None:
        options["snapshot_s"] = args.snapshot_s
    if args.healthy_days is not None:
        options["healthy_days"] = args.healthy_days
    if args.profile == "plain":
        result = {**run_benchmark(FleetConfig(**options)), "profile": "plain"}
    else:
        print("== realism on ==")
        on = run_benchmark(FleetConfig(**options, realism=True))
        print("\n== realism off (baseline) ==")
        off = run_benchmark(FleetConfig(**options, realism=False))
        result = compare(on, off)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
