"""An in-process serial line for unit tests: two ports joined like a null-modem cable.

`SerialTransport(path, opener=line.opener("b"))` reads what `line.port("a")` writes, with no
socat and no pty. `unplug()` makes both ends fail as a pulled USB adapter does, `plug()`
brings them back; integration tests use a real socat pty pair instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

import serial

__all__ = ["LoopbackLine", "LoopbackPort"]

End = Literal["a", "b"]


class LoopbackPort:
    """One end of a `LoopbackLine`, with the subset of the pyserial API the transport uses."""

    def __init__(self, line: LoopbackLine, end: End) -> None:
        self._line = line
        self._end = end
        self.timeout: float | None = None
        self._open = True
        self._cancel = False
        self._generation = line.generation  # an unplug breaks every port opened before it

    @property
    def in_waiting(self) -> int:
        with self._line.cond:
            self._check()
            return len(self._line.buffers[self._end])

    def read(self, size: int = 1) -> bytes:
        """Up to `size` bytes; waits for at least one until `timeout` (None waits forever)."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        with self._line.cond:
            buf = self._line.buffers[self._end]
            while not buf and not self._cancel:
                self._check()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._line.cond.wait(left)
            self._check()
            self._cancel = False
            data = bytes(buf[:size])
            del buf[:size]
            return data

    def write(self, data: bytes, /) -> int:
        with self._line.cond:
            self._check()
            self._line.buffers["b" if self._end == "a" else "a"] += data
            self._line.cond.notify_all()
        return len(data)

    def cancel_read(self) -> None:
        """Wake a blocked read, as pyserial's cancel_read does."""
        with self._line.cond:
            self._cancel = True
            self._line.cond.notify_all()

    def close(self) -> None:
        with self._line.cond:
            self._open = False
            self._line.cond.notify_all()

    def _check(self) -> None:
        if not self._open:
            raise serial.PortNotOpenError()
        if not self._line.plugged or self._generation != self._line.generation:
            raise serial.SerialException("read failed: [Errno 5] Input/output error (unplugged)")


class LoopbackLine:
    """Two connected in-memory ports, "a" and "b"; bytes written on one are read on the other."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.buffers: dict[End, bytearray] = {"a": bytearray(), "b": bytearray()}
        self.plugged = True
        self.generation = 0

    def port(self, end: End) -> LoopbackPort:
        """Open one end now; raises SerialException while unplugged, as opening a gone tty does."""
        with self.cond:
            if not self.plugged:
                raise serial.SerialException(2, f"could not open port loopback-{end}: unplugged")
        return LoopbackPort(self, end)

    def opener(self, end: End) -> Callable[[str, int], LoopbackPort]:
        """An `opener=` for SerialTransport that opens this end (path and baud rate ignored)."""
        return lambda _path, _baudrate: self.port(end)

    def unplug(self) -> None:
        """Every open end fails from now on and unread bytes are lost."""
        with self.cond:
            self.plugged = False
            self.generation += 1
            for buf in self.buffers.values():
                buf.clear()
            self.cond.notify_all()

    def plug(self) -> None:
        """Ends can be opened again (ends opened before the unplug stay broken)."""
        with self.cond:
            self.plugged = True
