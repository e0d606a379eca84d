"""Coordinator for one Modbus device: poll at the profile's interval, back off on failure.

Register values (already in SI units, decoded by the firmware_bridge profile) become
features of one (asset, point). A value the poller marks stale is passed on flagged
`stale`, and as null once it has been stale for longer than the point table's
`max_stale_s` (the same rule as serial points); a failed poll writes nothing, so the point
table repeats the last good values as stale, then nulls. Values are never invented.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from edge_agent._errors import ConfigError
from edge_agent.acquisition._points import PointTable
from edge_agent.config import ModbusSourceConfig
from ironwatch.units import SI_CONVERSIONS
from ironwatch.wire import check_feature_name

__all__ = ["ModbusCoordinator", "ModbusCounters", "ModbusReader", "feature_name"]

_log = logging.getLogger(__name__)

_BACKOFF_MAX_S = 30.0


class ModbusReader(Protocol):
    """What the coordinator needs from `firmware_bridge`'s Modbus poller."""

    def poll(self) -> Any: ...

    def close(self) -> None: ...


@dataclass
class ModbusCounters:
    polls: int = 0
    poll_failures: int = 0
    stale_values: int = 0
    unmapped: int = 0


def feature_name(key: str, mapping: Mapping[str, str]) -> tuple[str, float] | None:
    """The feature name and factor for a register key, or None if it cannot be named in SI."""
    if key in mapping:
        return mapping[key], 1.0
    # A unit the contract does not take but converts exactly (kPa -> bar).
    for suffix, (replacement, factor) in SI_CONVERSIONS.items():
        if key.endswith(suffix):
            key, scale = key.removesuffix(suffix) + replacement, factor
            break
    else:
        scale = 1.0
    try:
        check_feature_name(key)
    except ValueError:
        return None
    return key, scale


def _default_reader(src: ModbusSourceConfig) -> ModbusReader:
    from firmware_bridge.modbus_poller import ModbusPoller
    from firmware_bridge.modbus_profile import DeviceProfile

    profile = DeviceProfile.load(src.profile)
    if src.transport == "tcp":
        poller: Any = ModbusPoller(profile, transport="tcp", host=src.host, port=src.port or 502,
                                   device_id=src.device_id)
    else:
        poller = ModbusPoller(profile, transport="rtu", serial_port=src.serial_port,
                              baudrate=src.baudrate, device_id=src.device_id)
    return poller  # type: ignore[no-any-return]


def profile_interval_s(profile_name: str) -> float:
    """The shortest poll interval in a device profile; ConfigError if it cannot be loaded."""
    try:
        from firmware_bridge.modbus_profile import DeviceProfile

        profile = DeviceProfile.load(profile_name)
    except (ImportError, ValueError, OSError) as err:
        raise ConfigError(f"Modbus profile {profile_name!r}: {err}") from err
    return min((r.poll_interval_s for r in profile.registers), default=1.0)


class ModbusCoordinator:
    """Runs one Modbus device in its own thread until `stop()`."""

    def __init__(
        self,
        source: ModbusSourceConfig,
        table: PointTable,
        *,
        reader_factory: Callable[[ModbusSourceConfig], ModbusReader] = _default_reader,
        interval_s: float | None = None,
    ) -> None:
        self.source = source
        self.table = table
        self.counters = ModbusCounters()
        # Loaded even when an interval is given: a wrong profile name must fail at start.
        profile_interval = profile_interval_s(source.profile)
        self.interval_s = interval_s or source.poll_interval_s or profile_interval
        self._factory = reader_factory
        self._reader: ModbusReader | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self._fresh_at: dict[str, float] = {}  # feature -> monotonic time of its last good read
        self.last_success = False

    @property
    def name(self) -> str:
        where = self.source.host if self.source.transport == "tcp" else self.source.serial_port
        return f"modbus {where}#{self.source.device_id}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._close_reader()

    def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception as err:  # a dying connection may fail to close; nothing to do
                _log.debug("%s: close: %s", self.name, err)

    def _run(self) -> None:
        backoff = self.interval_s
        while not self._stop.is_set():
            if self.poll_once():
                backoff = self.interval_s
                wait = self.interval_s
            else:
                wait = backoff
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
            self._stop.wait(wait)

    def poll_once(self) -> bool:
        """One poll; False if the reader raised. Public so tests can drive it without a thread."""
        try:
            if self._reader is None:
                self._reader = self._factory(self.source)
            result = self._reader.poll()
        except Exception as err:
            # Connection refused, timeouts, a device gone: keep the last good values, retry.
            self.counters.poll_failures += 1
            if self.last_success or self.counters.poll_failures == 1:
                _log.warning("%s: poll failed: %s; backing off", self.name, err)
            self.last_success = False
            self._close_reader()
            return False
        self.counters.polls += 1
        # The poller does not raise on a dead device: it reports errors, backs off itself
        # and returns the last good values marked stale, which are passed on as such.
        errors: tuple[Any, ...] = tuple(getattr(result, "errors", ()))
        ok = not errors
        if ok and not self.last_success:
            _log.info("%s: polling every %.1f s", self.name, self.interval_s)
        elif not ok:
            self.counters.poll_failures += 1
            if self.last_success or self.counters.poll_failures == 1:
                _log.warning("%s: poll failed: %s", self.name,
                             getattr(errors[0], "message", errors[0]))
        self.last_success = ok
        self._store(getattr(result, "values", result))
        return True

    def _store(self, readings: Mapping[str, Any]) -> None:
        values: dict[str, float | None] = {}
        stale = False
        now = time.monotonic()
        for key, reading in readings.items():
            named = feature_name(key, self.source.features)
            if named is None:
                self.counters.unmapped += 1
                if key not in self._warned:
                    self._warned.add(key)
                    _log.warning("%s: register %r has no SI feature name; map it in `features`",
                                 self.name, key)
                continue
            name, factor = named
            value = getattr(reading, "value", reading)
            if value is None or not math.isfinite(float(value)):
                continue
            if getattr(reading, "stale", False):
                stale = True
                self.counters.stale_values += 1
                if now - self._fresh_at.setdefault(name, now) > self.table.max_stale_s:
                    values[name] = None  # too old to stand for the machine now
                    continue
            else:
                self._fresh_at[name] = now
            values[name] = float(value) * factor
        if values:
            self.table.set_scalars((self.source.asset_id, self.source.point), values, stale=stale)
