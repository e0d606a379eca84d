"""Poll one Modbus device through its profile: grouped reads, retries, backoff, last good values.

Synchronous by design: the gateway calls `poll()` from its acquisition thread, and the
pymodbus sync clients are simpler to bound in time than an event loop shared with MQTT.
A failed read never invents a value: the last good one is returned with `stale=True`
and the timestamp of when it was actually read.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from firmware_bridge.modbus_profile import DeviceProfile, ReadBlock, Table

__all__ = ["ModbusPoller", "PollError", "PollResult", "PollerStats", "Reading"]

_log = logging.getLogger(__name__)

ErrorKind = Literal["timeout", "exception_response", "connection_error", "unavailable"]


@dataclass(frozen=True, slots=True)
class Reading:
    """A value in its SI unit, when it was read (UTC), and whether the latest read of it failed."""

    value: float
    unit: str
    ts: datetime
    stale: bool


@dataclass(frozen=True, slots=True)
class PollError:
    """Why a block could not be read; `unavailable` means backing off, no I/O was tried."""

    kind: ErrorKind
    message: str
    block: ReadBlock | None = None


@dataclass(frozen=True, slots=True)
class PollResult:
    """Every value ever read (fresh or stale) and the errors of this poll."""

    values: dict[str, Reading]
    errors: tuple[PollError, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every due read succeeded."""
        return not self.errors


@dataclass(frozen=True, slots=True)
class PollerStats:
    """Counters since the poller was made; timeouts count each attempt, retries included."""

    polls_ok: int = 0
    polls_failed: int = 0
    timeouts: int = 0
    exception_responses: int = 0
    connection_errors: int = 0


@dataclass(slots=True)
class _Last:
    value: float
    ts: datetime
    stale: bool = False


@dataclass(slots=True)
class _Counters:
    polls_ok: int = 0
    polls_failed: int = 0
    timeouts: int = 0
    exception_responses: int = 0
    connection_errors: int = 0
    errors: list[PollError] = field(default_factory=list)


class _DeviceDown(Exception):
    """Internal: stop this poll, the device is not answering at all."""


class ModbusPoller:
    """Reads a device's profile registers over Modbus TCP or RTU with retries and backoff."""

    def __init__(
        self,
        profile: DeviceProfile,
        *,
        transport: Literal["tcp", "rtu"],
        host: str | None = None,
        port: int = 502,
        serial_port: str | None = None,
        baudrate: int = 19_200,
        parity: Literal["N", "E", "O"] = "N",
        stopbits: int = 1,
        device_id: int = 1,
        timeout_s: float = 1.0,
        retries: int = 2,
        retry_backoff_s: float = 0.05,
        reconnect_backoff_s: tuple[float, float] = (0.5, 30.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if transport == "tcp" and not host:
            raise ValueError("transport='tcp' needs host=")
        if transport == "rtu" and not serial_port:
            raise ValueError("transport='rtu' needs serial_port=")
        if transport not in ("tcp", "rtu"):
            raise ValueError(f"transport must be 'tcp' or 'rtu', got {transport!r}")
        if not 0 <= device_id <= 247:
            raise ValueError(f"device_id must be 0..247, got {device_id}")
        if timeout_s <= 0 or retries < 0 or retry_backoff_s < 0:
            raise ValueError("timeout_s must be > 0, retries and retry_backoff_s >= 0")
        low, high = reconnect_backoff_s
        if not 0 < low <= high:
            raise ValueError(f"reconnect_backoff_s needs 0 < min <= max: {low, high}")
        self.profile = profile
        self.device_id = device_id
        self.retries = retries
        self._retry_backoff_s = retry_backoff_s
        self._backoff_min, self._backoff_max = low, high
        self._backoff = low
        self._clock = clock
        self._retry_at = -math.inf
        # pymodbus retries are off: we retry ourselves, with backoff, and count each attempt.
        self._client: Any
        if transport == "tcp":
            assert host is not None
            self._client = ModbusTcpClient(host, port=port, timeout=timeout_s, retries=0)
        else:
            self._client = ModbusSerialClient(
                serial_port or "",
                baudrate=baudrate,
                parity=parity,
                stopbits=stopbits,
                timeout=timeout_s,
                retries=0,
            )
        self._blocks = profile.read_blocks()
        self._next_due = {spec.key: -math.inf for spec in profile.registers}
        self._units = {spec.key: spec.unit for spec in profile.registers}
        self._intervals = {spec.key: spec.poll_interval_s for spec in profile.registers}
        self._last: dict[str, _Last] = {}
        self._n = _Counters()

    @property
    def stats(self) -> PollerStats:
        """A snapshot of the counters."""
        n = self._n
        return PollerStats(
            n.polls_ok, n.polls_failed, n.timeouts, n.exception_responses, n.connection_errors
        )

    def poll(self) -> PollResult:
        """Read every block with a key due for polling; return all values known so far."""
        now = self._clock()
        errors: list[PollError] = []
        if now < self._retry_at:
            errors.append(
                PollError(
                    "unavailable", f"device not answering; retry in {self._retry_at - now:.1f} s"
                )
            )
        else:
            due = [b for b in self._blocks if any(self._next_due[k] <= now for k in b.keys)]
            try:
                for block in due:
                    self._read_block(block, now, errors)
            except _DeviceDown:
                # Every block not read this time is stale now, not just the one that failed.
                for block in due:
                    for key in block.keys:
                        if key in self._last and self._next_due[key] <= now:
                            self._last[key].stale = True
                self._retry_at = self._clock() + self._backoff
                self._backoff = min(self._backoff * 2, self._backoff_max)
                self._client.close()
            else:
                self._backoff = self._backoff_min
        if errors:
            self._n.polls_failed += 1
        else:
            self._n.polls_ok += 1
        values = {
            key: Reading(last.value, self._units[key], last.ts, last.stale)
            for key, last in self._last.items()
        }
        return PollResult(values, tuple(errors))

    def close(self) -> None:
        """Close the connection; a later poll reconnects."""
        self._client.close()

    def __enter__(self) -> ModbusPoller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_block(self, block: ReadBlock, now: float, errors: list[PollError]) -> None:
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._retry_backoff_s * 2 ** (attempt - 1))
            try:
                response = self._request(block)
            except ConnectionException as err:
                self._n.connection_errors += 1
                errors.append(PollError("connection_error", str(err), block))
                self._mark_stale(block)
                raise _DeviceDown from err
            except ModbusIOException as err:
                # No (valid) answer in time: retry, the line may just have been noisy.
                self._n.timeouts += 1
                _log.debug("timeout reading %s (attempt %d): %s", block, attempt + 1, err)
                continue
            except ModbusException as err:
                self._n.connection_errors += 1
                errors.append(PollError("connection_error", str(err), block))
                self._mark_stale(block)
                raise _DeviceDown from err
            if response.isError():
                # The device answered "no" (illegal address, busy): retrying will not help.
                self._n.exception_responses += 1
                code = getattr(response, "exception_code", "?")
                errors.append(
                    PollError("exception_response", f"exception code {code} for {block}", block)
                )
                self._mark_stale(block)
                return
            words = response.bits[: block.count] if block.table.is_bits else response.registers
            if len(words) < block.count:
                self._n.exception_responses += 1
                errors.append(PollError("exception_response", f"short answer for {block}", block))
                self._mark_stale(block)
                return
            self._store(block, words, now)
            return
        errors.append(PollError("timeout", f"no answer after {self.retries + 1} attempts", block))
        self._mark_stale(block)
        raise _DeviceDown

    def _request(self, block: ReadBlock) -> Any:
        c, kw = self._client, {"count": block.count, "device_id": self.device_id}
        match block.table:
            case Table.HOLDING:
                return c.read_holding_registers(block.start, **kw)
            case Table.INPUT:
                return c.read_input_registers(block.start, **kw)
            case Table.COIL:
                return c.read_coils(block.start, **kw)
            case Table.DISCRETE:
                return c.read_discrete_inputs(block.start, **kw)

    def _store(self, block: ReadBlock, words: list[int] | list[bool], now: float) -> None:
        ts = datetime.now(UTC)
        for key, value in self.profile.decode(block.table, block.start, words).items():
            self._last[key] = _Last(value, ts)
            self._next_due[key] = now + self._intervals[key]

    def _mark_stale(self, block: ReadBlock) -> None:
        for key in block.keys:
            if key in self._last:
                self._last[key].stale = True
