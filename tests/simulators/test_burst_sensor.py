"""A burst sensor over a real socat pty: a capture every period, silence in between, and the
gateway's window assembly makes exactly one clean set of windows of each burst."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import serial

from edge_agent.acquisition import WindowAssembler
from firmware_bridge import FrameDecoder, SampleBlock
from ironwatch_app.local_servers import PtyPair
from simulators import Machine, MachineSpec
from simulators.serial_device import SerialDevice
from simulators.spec import FaultMode

pytestmark = pytest.mark.integration

FS = 25_600.0
PERIOD_S = 1.0
BURST = 8192  # two gateway windows of 4096
SPEC = MachineSpec(fault=FaultMode.OUTER_RACE, onset_h=0.0, failure_h=4.0, time_scale=3600.0,
                   seed=31, burst_period_s=PERIOD_S, burst_samples=BURST)


def test_burst_sensor_sends_a_burst_each_period_then_silence(pty_pair: PtyPair) -> None:
    reader = serial.Serial(pty_pair.b, timeout=0.02)
    device = SerialDevice(Machine(SPEC), pty_pair.a, block_size=1024, hello_period_s=None)
    thread = threading.Thread(target=device.run, kwargs={"duration_s": 3.6})
    decoder = FrameDecoder()
    arrivals: list[tuple[float, SampleBlock]] = []
    thread.start()
    while thread.is_alive():
        now = time.monotonic()
        arrivals += [(now, f) for f in decoder.feed(reader.read(65536))
                     if isinstance(f, SampleBlock)]
    reader.close()
    assert decoder.stats.crc_errors == decoder.stats.lost_frames == 0

    blocks = [b for _, b in arrivals]
    period = round(PERIOD_S * FS)
    # Bursts start at multiples of the period on the device's sample counter, and each is
    # BURST contiguous samples: the counter ran on through the silence.
    starts = sorted({b.first_sample_index // period * period for b in blocks})
    assert len(starts) == 4, starts  # captures at 0, 1, 2 and 3 s in 3.6 s
    assert starts == [k * period for k in range(4)]
    for s in starts:
        burst = [b for b in blocks if s <= b.first_sample_index < s + period]
        assert [b.first_sample_index for b in burst] == [s + 1024 * i for i in range(8)]
        assert sum(b.n_samples for b in burst) == BURST
    # On the wire: a burst arrives within its capture time, then nothing for the rest of the
    # period.
    first_arrival = [min(t for t, b in arrivals if b.first_sample_index == s) for s in starts]
    spacing = np.diff(first_arrival)
    assert np.all(np.abs(spacing - PERIOD_S) < 0.2), spacing
    last_arrival = [max(t for t, b in arrivals if s <= b.first_sample_index < s + period)
                    for s in starts]
    gaps = np.array(first_arrival[1:]) - np.array(last_arrival[:-1])
    assert np.all(gaps > PERIOD_S - BURST / FS - 0.2), gaps

    # The gateway's assembler makes two full windows of each burst and never a broken one.
    assembler = WindowAssembler(4096)
    windows = [w for b in blocks for w in assembler.feed(b)]
    assert [w.first_sample_index for w in windows] == [s + o for s in starts for o in (0, 4096)]
    assert assembler.gaps == 0

    # The samples are the machine's, with the silent stretches skipped (machine age ran on).
    reference = Machine(SPEC)
    expected = []
    for s in starts:
        reference.skip(s - reference.sample_index)
        expected.append(reference.render(BURST))
    decoded = np.concatenate([
        np.frombuffer(b.samples, "<i2").reshape(-1, 3).T * b.scale for b in blocks
    ], axis=1)
    np.testing.assert_allclose(decoded, np.concatenate(expected, axis=1),
                               atol=blocks[0].scale / 2 + 1e-9)


def test_burst_longer_than_its_period_is_refused() -> None:
    with pytest.raises(ValueError, match="burst_samples"):
        SerialDevice(Machine(SPEC), "/dev/null", burst_period_s=0.1, burst_samples=8192)
