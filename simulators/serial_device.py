"""A simulated sensor device speaking the firmware protocol over a serial port or pty path.

It behaves like the firmware: a Hello when the port opens, SampleBlocks paced by the wall
clock at the real sample rate, a ScalarReading of temperature and speed every second and a
Heartbeat. Writes never block the acquisition: frames wait in a bounded queue and, when the
reader is too slow (or absent), whole new frames are dropped and counted before they get a
sequence number, so the byte stream is never corrupted and the gap shows in
``first_sample_index``, as with real firmware that overruns.

A burst sensor (``burst_period_s``) captures ``burst_samples`` contiguous samples at the
start of every period, sends them as they are acquired, then stays silent: its sample counter
runs on, so the next burst's ``first_sample_index`` jumps by the silent samples, and the
machine ages through the silence unrecorded.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from firmware_bridge import Frame, Heartbeat, Hello, Quantity, SampleBlock, ScalarReading, encode
from simulators.machine import Machine

__all__ = ["DEFAULT_SCALE", "DeviceStats", "SerialDevice"]

_log = logging.getLogger(__name__)

#: m/s² per count: ±16 g full scale, like a typical industrial MEMS/IEPE front end.
DEFAULT_SCALE = 16.0 * 9.80665 / 32767.0
FIRMWARE_VERSION = "1.0.0-sim"
MODEL = "IW-SIM3"


@dataclass
class DeviceStats:
    """Counters of a device run; ``frames_dropped`` never includes a half-written frame."""

    frames_sent: int = 0
    frames_dropped: int = 0
    blocks_generated: int = 0
    samples_per_channel: int = 0
    bytes_written: int = 0
    clipped_samples: int = 0
    opens: int = 0
    write_errors: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class SerialDevice:
    """Streams one `Machine` as firmware frames to ``port`` until `stop()` or the stop event.

    ``max_backlog_s`` bounds the unsent data: beyond it new frames are dropped. The first
    ``block_size`` samples are sent one block period after start, as a real ADC would.
    """

    def __init__(
        self,
        machine: Machine,
        port: str,
        *,
        device_id: int = 1,
        block_size: int = 1024,
        scale: float = DEFAULT_SCALE,
        scalar_period_s: float = 1.0,
        heartbeat_period_s: float = 2.0,
        max_backlog_s: float = 0.5,
        reopen_period_s: float = 0.5,
        hello_period_s: float | None = 30.0,
        burst_period_s: float | None = None,
        burst_samples: int | None = None,
    ) -> None:
        if not 16 <= block_size <= 8192:
            raise ValueError(f"block_size must be 16..8192, got {block_size}")
        spec = machine.spec
        self.burst_period_s = burst_period_s or spec.burst_period_s
        self.burst_samples = burst_samples or spec.burst_samples
        self._period_samples = 0
        if self.burst_period_s is not None:
            self._period_samples = round(self.burst_period_s * machine.sample_rate_hz)
            if not 16 <= self.burst_samples <= self._period_samples:
                raise ValueError(
                    f"burst_samples must be 16..{self._period_samples} (one period), "
                    f"got {self.burst_samples}"
                )
        self.machine = machine
        self.port = port
        self.device_id = device_id
        self.block_size = block_size
        self.scale = scale
        self.scalar_period_s = scalar_period_s
        self.heartbeat_period_s = heartbeat_period_s
        self.reopen_period_s = reopen_period_s
        # Firmware says Hello at boot; repeating it lets a gateway that attached late learn
        # the device without a reboot.
        self.hello_period_s = hello_period_s
        bytes_per_s = machine.sample_rate_hz * machine.channels * 2.0
        self.max_backlog_bytes = max(int(bytes_per_s * max_backlog_s), 64 * 1024)
        self.stats = DeviceStats()
        self._seq = 0
        self._fd: int | None = None
        self._queue: deque[memoryview] = deque()
        self._queued_bytes = 0
        self._stop = threading.Event()
        self._t0 = time.monotonic()

    # -- frames ---------------------------------------------------------------------------

    def _uptime_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000.0)

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) % (1 << 32)
        return seq

    def _enqueue(self, make: Callable[..., Frame], **fields: Any) -> bool:
        """Queue a frame if the backlog allows; the seq is only spent on frames that go out."""
        if self._fd is None or self._queued_bytes > self.max_backlog_bytes:
            self.stats.frames_dropped += 1
            return False
        frame = make(device_id=self.device_id, seq=self._seq, **fields)
        data = encode(frame)
        self._next_seq()
        self._queue.append(memoryview(data))
        self._queued_bytes += len(data)
        return True

    def _hello(self) -> None:
        self._enqueue(
            Hello,
            firmware_version=FIRMWARE_VERSION,
            model=MODEL,
            serial_number=f"SIM-{self.machine.spec.machine_id}"[:64],
            channels=self.machine.channels,
            sample_rate_hz=self.machine.sample_rate_hz,
        )

    def _next_block(self) -> tuple[int, int]:
        """(first sample index, length) of the next block the device will send."""
        i = self.machine.sample_index
        if not self._period_samples:
            return i, self.block_size
        offset = i % self._period_samples
        if offset >= self.burst_samples:  # silent until the next period
            i += self._period_samples - offset
            offset = 0
        return i, min(self.block_size, self.burst_samples - offset)

    def _block(self) -> None:
        first, n = self._next_block()
        self.machine.skip(first - self.machine.sample_index)
        x = self.machine.render(n)
        counts = np.rint(x / self.scale)
        clipped = np.abs(counts) > 32767
        self.stats.clipped_samples += int(np.count_nonzero(clipped))
        # Interleave by channel: (channels, n) -> (n, channels) row-major.
        samples = np.clip(counts, -32768, 32767).astype("<i2").T.tobytes()
        self.stats.blocks_generated += 1
        self.stats.samples_per_channel += n
        self._enqueue(
            SampleBlock,
            first_sample_index=first,
            sample_rate_hz=self.machine.sample_rate_hz,
            channels=self.machine.channels,
            scale=self.scale,
            samples=samples,
        )

    def _scalars(self) -> None:
        values = self.machine.scalars()
        now = self._uptime_ms()
        for quantity, key in ((Quantity.TEMPERATURE_C, "temperature_c"),
                              (Quantity.SPEED_RPM, "speed_rpm")):
            self._enqueue(ScalarReading, timestamp_ms=now, quantity=quantity, value=values[key])

    # -- port -----------------------------------------------------------------------------

    def _open(self) -> bool:
        try:
            fd = os.open(self.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as err:
            _log.debug("cannot open %s: %s", self.port, err)
            return False
        with contextlib.suppress(termios.error):
            tty.setraw(fd)
        self._fd = fd
        self.stats.opens += 1
        self._queue.clear()
        self._queued_bytes = 0
        _log.info("serial device %d streaming on %s", self.device_id, self.port)
        self._hello()
        return True

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
        # A partly written frame is lost with the port; the receiver resyncs at the next 0x00.
        self._queue.clear()
        self._queued_bytes = 0

    def _drain_input(self) -> None:
        """Read and discard what the gateway sends (acks): the simulated firmware ignores it."""
        if self._fd is None:
            return
        # EAGAIN: nothing to read; EIO: the other side is gone, which _flush will notice.
        with contextlib.suppress(OSError):
            while os.read(self._fd, 65536):
                pass

    def _flush(self, timeout_s: float) -> None:
        """Write queued bytes until the queue is empty, the port is full, or the timeout."""
        deadline = time.monotonic() + timeout_s
        while self._queue and self._fd is not None:
            head = self._queue[0]
            try:
                n = os.write(self._fd, head)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                select.select([], [self._fd], [], remaining)
                continue
            except OSError as err:
                if err.errno in (errno.EINTR,):
                    continue
                self.stats.write_errors += 1
                _log.warning("write to %s failed (%s); reopening", self.port, err)
                self._close()
                return
            self.stats.bytes_written += n
            self._queued_bytes -= n
            if n == len(head):
                self._queue.popleft()
                self.stats.frames_sent += 1
            else:
                self._queue[0] = head[n:]

    # -- run loop -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(
        self, stop: threading.Event | None = None, duration_s: float | None = None
    ) -> DeviceStats:
        """Stream until `stop()`, the ``stop`` event, or ``duration_s``; returns the counters."""
        if stop is not None:
            self._stop = stop
        stop_event = self._stop
        fs = self.machine.sample_rate_hz
        self._t0 = start = time.monotonic()
        next_scalar = start + self.scalar_period_s
        next_heartbeat = start + self.heartbeat_period_s
        next_open = start
        next_hello = start + (self.hello_period_s or 0.0)
        while not stop_event.is_set():
            now = time.monotonic()
            if duration_s is not None and now - start >= duration_s:
                break
            if self._fd is None and now >= next_open and not self._open():
                next_open = now + self.reopen_period_s
            self._drain_input()
            # Catch up on every block whose last sample has been "acquired" by now.
            first, n = self._next_block()
            while start + (first + n) / fs <= now:
                self._block()
                first, n = self._next_block()
            if now >= next_scalar:
                self._scalars()
                next_scalar += self.scalar_period_s
            if self.hello_period_s and now >= next_hello:
                self._hello()
                next_hello += self.hello_period_s
            if now >= next_heartbeat:
                self._enqueue(Heartbeat, uptime_ms=self._uptime_ms())
                next_heartbeat += self.heartbeat_period_s
            due = min(start + (first + n) / fs, next_scalar, next_heartbeat)
            wait = max(0.0, due - time.monotonic())
            if self._queue:
                self._flush(wait)
            else:
                stop_event.wait(wait)
        self._flush(0.2)
        self._close()
        return self.stats
