"""The simulated firmware device over a real socat pty, read back with FrameDecoder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import serial

from firmware_bridge import FrameDecoder, Heartbeat, Hello, Quantity, SampleBlock, ScalarReading
from ironwatch_app.local_servers import PtyPair
from simulators import Machine, MachineSpec
from simulators.serial_device import SerialDevice
from simulators.spec import FaultMode

pytestmark = pytest.mark.integration

SPEC = MachineSpec(
    fault=FaultMode.INNER_RACE, onset_h=0.5, failure_h=2.0, time_scale=3600.0, seed=21
)


def read_for(port: serial.Serial, decoder: FrameDecoder, seconds: float) -> list[object]:
    frames: list[object] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frames += decoder.feed(port.read(65536))
    return frames


def read_until_done(
    port: serial.Serial, decoder: FrameDecoder, writer: threading.Thread
) -> list[object]:
    """Read while the writer runs, then drain what is still in flight."""
    frames: list[object] = []
    while writer.is_alive():
        frames += decoder.feed(port.read(65536))
    return frames + read_for(port, decoder, 0.5)


def test_stream_has_hello_blocks_at_the_real_rate_and_no_gaps(pty_pair: PtyPair) -> None:
    reader = serial.Serial(pty_pair.b, timeout=0.05)
    machine = Machine(SPEC)
    device = SerialDevice(machine, pty_pair.a, device_id=7, heartbeat_period_s=1.0)
    thread = threading.Thread(target=device.run, kwargs={"duration_s": 3.0})
    decoder = FrameDecoder()
    started = time.monotonic()
    thread.start()
    frames = read_until_done(reader, decoder, thread)
    elapsed = time.monotonic() - started
    reader.close()

    assert isinstance(frames[0], Hello)
    assert (frames[0].sample_rate_hz, frames[0].channels) == (25_600.0, 3)
    assert [f.seq for f in frames] == list(range(len(frames)))  # type: ignore[attr-defined]
    stats = decoder.stats
    assert (stats.crc_errors, stats.malformed, stats.lost_frames, stats.seq_gaps) == (0, 0, 0, 0)
    assert device.stats.frames_dropped == 0

    blocks = [f for f in frames if isinstance(f, SampleBlock)]
    assert all(b.sample_rate_hz == 25_600.0 and b.channels == 3 for b in blocks)
    assert [b.first_sample_index for b in blocks] == [1024 * i for i in range(len(blocks))]
    # Paced by the wall clock: 3 s of acquisition is 75 blocks of 1024 at 25.6 kHz.
    assert 73 <= len(blocks) <= 76, (len(blocks), elapsed)

    # The samples are the machine's waveform, quantised to the block's scale.
    decoded = np.concatenate([
        np.frombuffer(b.samples, "<i2").reshape(-1, 3).T * b.scale for b in blocks
    ], axis=1)
    expected = Machine(SPEC).render(decoded.shape[1])
    np.testing.assert_allclose(decoded, expected, atol=blocks[0].scale / 2 + 1e-9)

    scalars = [f for f in frames if isinstance(f, ScalarReading)]
    quantities = {s.quantity for s in scalars}
    assert quantities == {Quantity.TEMPERATURE_C, Quantity.SPEED_RPM}
    speed = [s.value for s in scalars if s.quantity is Quantity.SPEED_RPM]
    assert all(abs(v - SPEC.speed_rpm) < 5 for v in speed)
    assert any(isinstance(f, Heartbeat) for f in frames)


def test_device_without_reader_drops_whole_frames_and_never_blocks(pty_pair: PtyPair) -> None:
    machine = Machine(SPEC)
    device = SerialDevice(machine, pty_pair.a, max_backlog_s=0.1, hello_period_s=None)
    thread = threading.Thread(target=device.run, kwargs={"duration_s": 6.0})
    thread.start()
    time.sleep(2.5)  # nobody reads: the pty and socat buffers fill, then the backlog
    reader = serial.Serial(pty_pair.b, timeout=0.05)
    reader.reset_input_buffer()
    decoder = FrameDecoder()
    frames = read_for(reader, decoder, 2.5)
    thread.join(5.0)
    reader.close()
    assert not thread.is_alive()
    assert device.stats.frames_dropped > 0
    # Joining mid-stream costs at most the one partial frame; everything after it is clean.
    assert decoder.stats.crc_errors + decoder.stats.malformed <= 1
    blocks = [f for f in frames if isinstance(f, SampleBlock)]
    assert len(blocks) > 20
    gaps = np.diff([b.first_sample_index for b in blocks])
    assert np.all(gaps % 1024 == 0) and np.all(gaps >= 1024)
    # Dropped frames never got a sequence number: after joining, seq runs without gaps.
    seqs = [f.seq for f in frames]  # type: ignore[attr-defined]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_cli_serial_streams_and_exits_zero_on_sigterm(pty_pair: PtyPair) -> None:
    reader = serial.Serial(pty_pair.b, timeout=0.05)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ironwatch_app.cli", "sim", "serial", "--port", pty_pair.a,
         "--fault", "outer_race", "--onset-h", "0", "--failure-h", "10", "--time-scale", "60",
         "--sample-rate", "12800", "--channels", "2", "--device-id", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ},
    )
    try:
        decoder = FrameDecoder()
        frames: list[object] = []
        deadline = time.monotonic() + 30.0
        while len(frames) < 10 and time.monotonic() < deadline:
            frames += decoder.feed(reader.read(65536))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        reader.close()
    assert proc.returncode == 0, err.decode()
    hello = frames[0]
    assert isinstance(hello, Hello)
    assert (hello.device_id, hello.channels, hello.sample_rate_hz) == (3, 2, 12_800.0)
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["event"] == "stopped" and summary["fault_mode"] == "outer_race"
    assert summary["frames_sent"] >= 10


def test_device_reopens_the_port_after_the_link_comes_back(pty_pair: PtyPair) -> None:
    # Hello repeats, so a reader that attaches after the device reopened still gets one.
    device = SerialDevice(Machine(SPEC), pty_pair.a, reopen_period_s=0.1, hello_period_s=0.5)
    stop = threading.Event()
    thread = threading.Thread(target=device.run, kwargs={"stop": stop})
    reader = serial.Serial(pty_pair.b, timeout=0.05)
    thread.start()
    try:
        before = [f for f in read_for(reader, FrameDecoder(), 1.0) if isinstance(f, SampleBlock)]
        reader.close()
        pty_pair.stop()  # the cable is pulled: socat and both ptys disappear
        time.sleep(0.5)
        pty_pair.start()  # the same paths again
        reader = serial.Serial(pty_pair.b, timeout=0.05)
        # Read until the device has clearly come back (a loaded machine may take a while).
        decoder = FrameDecoder()
        frames: list[object] = []
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            frames += decoder.feed(reader.read(65536))
            blocks = [f for f in frames if isinstance(f, SampleBlock)]
            if any(isinstance(f, Hello) for f in frames) and len(blocks) > 20:
                break
    finally:
        stop.set()
        thread.join(10.0)
        reader.close()
    assert not thread.is_alive()
    assert device.stats.opens >= 2 and device.stats.write_errors >= 1
    hellos = [f for f in frames if isinstance(f, Hello)]
    blocks = [f for f in frames if isinstance(f, SampleBlock)]
    assert hellos and len(blocks) > 20
    # The device kept acquiring while unplugged (0.5 s at least): its sample counter jumped.
    assert before
    last_before = before[-1].first_sample_index + before[-1].n_samples
    assert blocks[0].first_sample_index > last_before + 0.4 * 25_600
