"""Capture time: windows are stamped from the sensor's sample counter, not their arrival."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.acquisition import PointTable, SerialCoordinator
from edge_agent.acquisition._clock import SampleClock
from edge_agent.config import AssetConfig, SerialSourceConfig

from .conftest import SAMPLE_RATE_HZ, sine_block

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
FS = 25_600.0


@given(
    delays=st.lists(st.floats(0.0, 0.5), min_size=5, max_size=60),
    block=st.sampled_from([256, 1024, 4096]),
)
def test_capture_time_is_within_the_smallest_transport_delay(
    delays: list[float], block: int
) -> None:
    """Blocks reach the gateway late by a random transport delay; the capture time of any
    sample is off by no more than the smallest delay seen, never later than the truth."""
    clock = SampleClock()
    for i, delay in enumerate(delays):
        end = (i + 1) * block
        clock.observe(i * block, block, FS, T0 + timedelta(seconds=end / FS + delay))
    for index in (0, block, len(delays) * block):
        got = clock.to_utc(index)
        assert got is not None
        error = (got - (T0 + timedelta(seconds=index / FS))).total_seconds()
        assert -1e-6 <= error <= min(delays) + 1e-6


def test_burst_after_silence_keeps_its_own_time() -> None:
    """A burst sensor's counter runs through the silence: the next burst is placed by it."""
    clock = SampleClock()
    clock.observe(0, 4096, FS, T0 + timedelta(seconds=4096 / FS))
    # 5 minutes of silence, then the next burst, which arrives 2 s late (a busy link).
    start = int(300 * FS)
    clock.observe(start, 4096, FS, T0 + timedelta(seconds=(start + 4096) / FS + 2.0))
    got = clock.to_utc(start + 4096)
    assert got == T0 + timedelta(seconds=(start + 4096) / FS)


def test_buffered_replay_keeps_the_capture_times() -> None:
    """Ten seconds of buffered samples arriving at once are spread over those ten seconds."""
    clock = SampleClock()
    arrival = T0 + timedelta(seconds=10)
    n = 2560
    for i in range(100):
        clock.observe(i * n, n, FS, arrival)
    assert clock.to_utc(0) == T0
    assert clock.to_utc(int(5 * FS)) == T0 + timedelta(seconds=5)


def test_device_restart_starts_the_clock_again() -> None:
    clock = SampleClock()
    clock.observe(0, 1024, FS, T0)
    clock.observe(1024, 1024, FS, T0 + timedelta(seconds=0.04))
    # The device restarted 60 s later: its counter is back at 0.
    clock.observe(0, 1024, FS, T0 + timedelta(seconds=60 + 1024 / FS))
    assert clock.restarts == 1
    assert clock.to_utc(1024) == T0 + timedelta(seconds=60 + 1024 / FS)


def test_no_time_before_the_first_block() -> None:
    assert SampleClock().to_utc(10) is None
    with pytest.raises(ValueError):
        SampleClock(horizon_s=0)


def test_serial_windows_carry_capture_time_not_arrival() -> None:
    """A burst that reached the gateway in one go: its two windows are stamped 4096 samples
    apart by the device's counter, although both were made in the same instant."""
    key = ("pump-01", "de")
    table = PointTable([key])
    source = SerialSourceConfig.model_validate(
        {"port": "/dev/null", "device_id": 7, "window_samples": 4096,
         "channels": [{"channel": 0, "asset_id": "pump-01", "point": "de"}]})
    asset = AssetConfig.model_validate({"asset_id": "pump-01", "speed_rpm": 1480,
                                        "points": ["de"]})
    coord = SerialCoordinator(source, {"pump-01": asset}, table)
    before = datetime.now(UTC)
    for i in range(16):
        coord.handle(sine_block(7, i, i * 512))
    after = datetime.now(UTC)
    assert coord.counters.windows == 2
    (record,) = table.collect(1.0)
    raw = table.raw_window(key)
    assert raw is not None
    # The newest window ends at the newest sample, which arrived between before and after;
    # the record carries that capture time.
    assert record.ts == raw.ts
    assert before - timedelta(seconds=0.01) <= raw.ts <= after
    # The first window (samples 0..4095) ended 4096 samples before the second.
    first_end = coord._clock.to_utc(4096)
    assert first_end is not None
    assert (raw.ts - first_end).total_seconds() == pytest.approx(4096 / SAMPLE_RATE_HZ, abs=1e-5)
