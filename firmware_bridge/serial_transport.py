"""A thin pyserial shell around `FrameDecoder`: read frames, write frames, survive unplugging.

All protocol logic is in `firmware_bridge.protocol`; this module only moves bytes. When the
device disappears (read/write error, or its path is gone) the port is closed and reopened
with exponential backoff on later calls, so the caller's loop just keeps calling
`read_frames`. Not thread-safe: use it from one thread (`close` may come from another).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import serial

from firmware_bridge._errors import FirmwareBridgeError
from firmware_bridge.protocol import Frame, FrameDecoder, encode

__all__ = ["SerialPort", "SerialTransport", "SerialTransportError", "TransportStats"]

_log = logging.getLogger(__name__)


class SerialTransportError(FirmwareBridgeError):
    """The serial port is not available right now (not connected, or a write failed)."""


class SerialPort(Protocol):
    """The part of `serial.Serial` the transport uses; tests may pass an in-process fake."""

    timeout: float | None

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...


def _open_pyserial(port: str, baudrate: int) -> SerialPort:
    # exclusive: a second gateway process on the same port would split the byte stream.
    ser: Any = serial.Serial(
        port=port, baudrate=baudrate, timeout=0, write_timeout=2.0, exclusive=True
    )
    return ser  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class TransportStats:
    """Connection history: `reconnects` counts reopens after the device was lost."""

    opens: int
    reconnects: int
    disconnects: int
    open_failures: int
    bytes_read: int
    bytes_written: int


class SerialTransport:
    """Frames over one serial port, reopened with backoff after the device goes away."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 921_600,
        decoder: FrameDecoder | None = None,
        reopen_backoff: tuple[float, float] = (0.2, 5.0),
        read_size: int = 65_536,
        opener: Callable[[str, int], SerialPort] = _open_pyserial,
    ) -> None:
        low, high = reopen_backoff
        if not 0 < low <= high:
            raise ValueError(f"reopen_backoff must be (min, max), 0 < min <= max: {reopen_backoff}")
        self.port = port
        self.baudrate = baudrate
        self.decoder = decoder if decoder is not None else FrameDecoder()
        self._backoff_min, self._backoff_max = low, high
        self._backoff = low
        self._read_size = read_size
        self._opener = opener
        self._ser: SerialPort | None = None
        self._next_open = 0.0  # monotonic time before which we do not retry opening
        self._closed = threading.Event()
        # Held while read_frames runs, so close() from another thread never pulls the
        # file descriptor out from under a blocked read.
        self._read_lock = threading.Lock()
        self._lost = False  # True after a disconnect, so the next open counts as a reconnect
        self._opens = self._reconnects = self._disconnects = self._open_failures = 0
        self._bytes_read = self._bytes_written = 0

    @property
    def is_open(self) -> bool:
        """True while the port is open (the device is, as far as we know, connected)."""
        return self._ser is not None

    @property
    def reconnects(self) -> int:
        """Successful reopens after the device was lost."""
        return self._reconnects

    @property
    def stats(self) -> TransportStats:
        """A snapshot of the connection counters."""
        return TransportStats(
            self._opens,
            self._reconnects,
            self._disconnects,
            self._open_failures,
            self._bytes_read,
            self._bytes_written,
        )

    def read_frames(self, timeout_s: float) -> list[Frame]:
        """Frames that arrive within timeout_s; returns as soon as at least one is complete.

        Returns [] on timeout, also while the device is gone (it keeps trying to reopen).
        """
        with self._read_lock:
            return self._read_frames(time.monotonic() + max(0.0, timeout_s))

    def _read_frames(self, deadline: float) -> list[Frame]:
        while not self._closed.is_set():
            ser = self._ensure_open()
            now = time.monotonic()
            if ser is None:
                if now >= deadline:
                    return []
                # Sleep until the next reopen attempt, but wake up for close().
                self._closed.wait(min(self._next_open, deadline) - now)
                continue
            try:
                ser.timeout = max(0.0, deadline - now)
                data = ser.read(1)  # blocks until something arrives or the deadline
                if data:
                    waiting = ser.in_waiting
                    if waiting:
                        data += ser.read(min(waiting, self._read_size))
            except (serial.SerialException, OSError) as err:
                self._drop(f"read failed: {err}")
                continue
            if data:
                self._bytes_read += len(data)
                frames = self.decoder.feed(data)
                if frames:
                    return frames
            elif self._opener is _open_pyserial and not os.path.exists(self.port):
                # Some USB adapters go quiet instead of failing reads when unplugged.
                self._drop("device path is gone")
            if time.monotonic() >= deadline:
                return []
        return []

    def write(self, frame: Frame) -> None:
        """Send one frame; raises `SerialTransportError` if the device is not there."""
        ser = self._ensure_open()
        if ser is None:
            raise SerialTransportError(f"{self.port} is not connected")
        wire = encode(frame)
        try:
            ser.write(wire)
        except (serial.SerialException, OSError) as err:
            self._drop(f"write failed: {err}")
            raise SerialTransportError(f"write to {self.port} failed: {err}") from err
        self._bytes_written += len(wire)

    def close(self) -> None:
        """Close the port for good; a `read_frames` waiting in another thread returns []."""
        self._closed.set()
        cancel = getattr(self._ser, "cancel_read", None)
        if cancel is not None:
            cancel()  # wakes a read blocked in another thread
        with self._read_lock:
            self._close_port()

    def __enter__(self) -> SerialTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_open(self) -> SerialPort | None:
        if self._ser is not None or self._closed.is_set():
            return self._ser
        if time.monotonic() < self._next_open:
            return None
        try:
            self._ser = self._opener(self.port, self.baudrate)
        except (serial.SerialException, OSError, ValueError) as err:
            self._open_failures += 1
            self._schedule_reopen()
            _log.debug("cannot open %s: %s", self.port, err)
            return None
        self._opens += 1
        self._backoff = self._backoff_min
        # Bytes before the gap cannot complete a frame; sequence history is kept so
        # frames lost while unplugged still show up as a gap.
        self.decoder.reset(sequences=False)
        if self._lost:
            self._lost = False
            self._reconnects += 1
            _log.info("reopened %s (reconnect %d)", self.port, self._reconnects)
        return self._ser

    def _drop(self, reason: str) -> None:
        _log.warning("lost %s: %s; reopening with backoff", self.port, reason)
        self._disconnects += 1
        self._lost = True
        self._close_port()
        self._backoff = self._backoff_min
        self._schedule_reopen()

    def _schedule_reopen(self) -> None:
        self._next_open = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)

    def _close_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except (serial.SerialException, OSError) as err:
                _log.debug("closing %s: %s", self.port, err)
