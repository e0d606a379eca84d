"""Running-hours accounting on arrays: running, idle, gaps, replays, several points, rates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.domain.running_hours import HoursUpdate, accumulate, is_running

NAN = float("nan")


def _run(
    asset: list[int], ts: list[float], running: list[bool], n: int = 1,
    last_ts: list[float] | None = None, last_running: list[bool] | None = None,
    max_gap_s: float = 600.0,
) -> HoursUpdate:
    return accumulate(
        np.array(asset, dtype=np.intp), np.array(ts, dtype=float), np.array(running),
        last_ts_s=np.array(last_ts if last_ts is not None else [NAN] * n),
        last_running=np.array(last_running if last_running is not None else [False] * n),
        rate_h_per_day=np.full(n, NAN), max_gap_s=max_gap_s,
    )


def test_speed_decides_where_reported_else_vibration_above_idle() -> None:
    speed = np.array([1480.0, 0.0, NAN, NAN, NAN])
    velocity = np.array([0.1, 3.0, 1.0, 0.2, NAN])
    idle = np.full(5, 0.35)
    assert is_running(speed, velocity, idle).tolist() == [True, False, True, False, False]


def test_time_between_running_records_counts() -> None:
    out = _run([0] * 4, [0.0, 60.0, 120.0, 180.0], [True] * 4)
    assert out.hours_added[0] == pytest.approx(180.0 / 3600)
    assert out.last_ts_s[0] == 180.0
    assert out.last_running[0]


def test_idle_stretches_earn_nothing() -> None:
    # Runs 0-60, stops at 120 until 240, runs again 300-360.
    out = _run([0] * 7, [0, 60, 120, 180, 240, 300, 360],
               [True, True, False, False, False, True, True])
    assert out.hours_added[0] == pytest.approx(120.0 / 3600)


def test_a_gap_above_the_cap_earns_nothing() -> None:
    out = _run([0] * 4, [0.0, 60.0, 60.0 + 3600.0, 60.0 + 3660.0], [True] * 4, max_gap_s=600)
    assert out.hours_added[0] == pytest.approx(120.0 / 3600)


def test_replayed_and_old_records_add_nothing() -> None:
    first = _run([0] * 3, [0.0, 60.0, 120.0], [True] * 3)
    again = _run([0] * 3, [0.0, 60.0, 120.0], [True] * 3,
                 last_ts=first.last_ts_s.tolist(), last_running=first.last_running.tolist())
    assert again.hours_added[0] == 0.0
    assert again.records_used[0] == 0
    # Continuing after the accounted time counts from it.
    more = _run([0, 0], [60.0, 180.0], [True, True],
                last_ts=first.last_ts_s.tolist(), last_running=first.last_running.tolist())
    assert more.hours_added[0] == pytest.approx(60.0 / 3600)
    assert more.records_used[0] == 1


def test_points_of_one_asset_at_one_time_are_one_instant_and_assets_are_apart() -> None:
    # Asset 0 has two points at the same capture times; asset 1 only idles.
    out = _run([0, 0, 0, 0, 1, 1], [0, 0, 30, 30, 0, 30],
               [True, False, False, True, False, False], n=2)
    assert out.hours_added.tolist() == pytest.approx([30 / 3600, 0.0])
    assert out.records_used.tolist() == [4, 2]


def test_rate_is_the_running_share_per_day() -> None:
    ts = np.arange(0.0, 86400.0 + 1, 60.0)
    running = (ts % 7200) < 3600  # half the time
    out = _run([0] * len(ts), ts.tolist(), running.tolist())
    assert out.rate_h_per_day[0] == pytest.approx(12.0, rel=0.05)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 10_000), st.booleans()), min_size=1, max_size=60),
    st.integers(1, 5),
)
def test_splitting_a_stream_into_batches_changes_nothing(
    records: list[tuple[float, bool]], parts: int
) -> None:
    records = sorted(dict(records).items())
    ts = [t for t, _ in records]
    run = [r for _, r in records]
    whole = _run([0] * len(ts), ts, run, max_gap_s=100.0)
    total, last_ts, last_run = 0.0, [NAN], [False]
    for chunk in np.array_split(np.arange(len(ts)), parts):
        idx = chunk.tolist()
        out = _run([0] * len(idx), [ts[i] for i in idx], [run[i] for i in idx],
                   last_ts=last_ts, last_running=last_run, max_gap_s=100.0)
        total += float(out.hours_added[0])
        last_ts, last_run = out.last_ts_s.tolist(), out.last_running.tolist()
    assert total == pytest.approx(float(whole.hours_added[0]))
    # Replaying everything afterwards adds nothing.
    replay = _run([0] * len(ts), ts, run, last_ts=last_ts, last_running=last_run,
                  max_gap_s=100.0)
    assert replay.hours_added[0] == 0.0
