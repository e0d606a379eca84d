"""Coordinator for one serial sensor: frames in, window features and scalars out.

It owns the read loop (the transport reopens the port with backoff after an unplug),
reassembles SampleBlocks into windows, computes features with the shared
`models.features.extract_features`, and writes them and the scalar readings into the
`PointTable`. Bad frames and broken windows are counted, never fatal.

A source with a pinned identity (model, serial number) takes data only from a device
whose Hello matched it since the port was last opened; until then, and from any other
device, frames are counted in `unverified_frames` and dropped.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge_agent.acquisition._clock import SampleClock
from edge_agent.acquisition._points import PointKey, PointTable, RawWindow
from edge_agent.acquisition._windows import Window, WindowAssembler
from edge_agent.config import AssetConfig, SerialSourceConfig
from firmware_bridge import Frame, Hello, Quantity, SampleBlock, ScalarReading
from ironwatch.physics import BearingGeometry, rpm_to_hz
from ironwatch.wire import utc_now
from models.features import extract_features

__all__ = ["FrameSource", "SerialCoordinator", "SerialCounters"]

_log = logging.getLogger(__name__)

# A device speed reading older than this no longer describes the shaft: use the nominal.
_SPEED_MAX_AGE_S = 30.0

# Scalar quantities reported as features, with the factor to the name's unit. Temperature
# and speed are handled apart (temperature trend, shaft speed for order features).
_SCALAR_FEATURES: dict[Quantity, tuple[str, float]] = {
    Quantity.LOAD_PCT: ("load_pct", 1.0),
    Quantity.CURRENT_A: ("current_a", 1.0),
    Quantity.VOLTAGE_V: ("voltage_v", 1.0),
    Quantity.POWER_KW: ("power_kw", 1.0),
    Quantity.PRESSURE_KPA: ("pressure_bar", 0.01),
    Quantity.HUMIDITY_PCT: ("humidity_pct", 1.0),
    Quantity.VELOCITY_RMS_MMS: ("device_velocity_rms_mms", 1.0),
    Quantity.ACCEL_RMS_MS2: ("device_accel_rms_ms2", 1.0),
    Quantity.ACCEL_PEAK_MS2: ("device_accel_peak_ms2", 1.0),
    Quantity.SUPPLY_VOLTAGE_V: ("supply_voltage_v", 1.0),
}


class FrameSource(Protocol):
    """What the coordinator needs from `firmware_bridge.serial_transport.SerialTransport`."""

    def read_frames(self, timeout_s: float) -> list[Frame]: ...

    def close(self) -> None: ...


@dataclass
class SerialCounters:
    frames: int = 0
    windows: int = 0
    window_gaps: int = 0
    foreign_frames: int = 0
    feature_errors: int = 0
    identity_mismatches: int = 0
    unverified_frames: int = 0


def _open_transport(src: SerialSourceConfig) -> FrameSource:
    from firmware_bridge.serial_transport import SerialTransport

    return SerialTransport(src.port, baudrate=src.baudrate)


class SerialCoordinator:
    """Runs one serial source in its own thread until `stop()`."""

    def __init__(
        self,
        source: SerialSourceConfig,
        assets: dict[str, AssetConfig],
        table: PointTable,
        *,
        transport_factory: Callable[[SerialSourceConfig], FrameSource] = _open_transport,
    ) -> None:
        self.source = source
        self.table = table
        self.counters = SerialCounters()
        self._assets = assets
        self._factory = transport_factory
        self._transport: FrameSource | None = None
        self._assembler = WindowAssembler(source.window_samples)
        self._clock = SampleClock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._speed_rpm: tuple[float, float] | None = None  # (monotonic s, rpm)
        # Channels grouped by asset and the bearing under their point: one vectorised
        # feature call per group and window.
        self._groups: dict[tuple[str, BearingGeometry | None], list[tuple[int, PointKey]]] = {}
        for ch in source.channels:
            bearing = assets[ch.asset_id].bearing_at(ch.point)
            group = (ch.asset_id, bearing.geometry() if bearing is not None else None)
            self._groups.setdefault(group, []).append((ch.channel, (ch.asset_id, ch.point)))
        self._keys = [(ch.asset_id, ch.point) for ch in source.channels]
        # The device whose Hello matched the pinned identity (None: none yet, or not pinned).
        self._verified_device: int | None = None
        self._opens = 0
        self.identity_problem: str | None = None  # the last mismatch, for status and logs

    @property
    def name(self) -> str:
        return f"serial {self.source.port}"

    def start(self) -> None:
        self._transport = self._factory(self.source)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._transport is not None:
            self._transport.close()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def decode_errors(self) -> int:
        """Corrupt frames seen by the decoder (CRC and malformed), if the transport has one."""
        decoder = getattr(self._transport, "decoder", None)
        stats = getattr(decoder, "stats", None)
        if stats is None:
            return 0
        return int(stats.crc_errors) + int(stats.malformed)

    def _run(self) -> None:
        assert self._transport is not None
        while not self._stop.is_set():
            try:
                frames = self._transport.read_frames(0.5)
            except Exception:
                # The transport handles unplugging itself; anything else is logged and retried.
                _log.exception("%s: read failed", self.name)
                self._stop.wait(1.0)
                continue
            for frame in frames:
                try:
                    self.handle(frame)
                except Exception:
                    # A frame the codec accepted but we cannot use must not stop acquisition.
                    self.counters.feature_errors += 1
                    _log.exception("%s: cannot process %s", self.name, type(frame).__name__)

    def _check_reopened(self) -> None:
        """A reopened port may have another device behind it: verify the identity again."""
        stats = getattr(self._transport, "stats", None)
        opens = getattr(stats, "opens", None)
        if isinstance(opens, int) and opens != self._opens:
            self._opens = opens
            self._verified_device = None

    def handle(self, frame: Frame) -> None:
        """Process one frame (public so tests can drive the coordinator without a port)."""
        if self.source.device_id is not None and frame.device_id != self.source.device_id:
            self.counters.foreign_frames += 1
            return
        if self.source.identity is not None:
            if isinstance(frame, Hello):
                self._hello(frame)
                return
            self._check_reopened()
            if frame.device_id != self._verified_device:
                self.counters.unverified_frames += 1
                return
        self.counters.frames += 1
        if isinstance(frame, SampleBlock):
            self._clock.observe(frame.first_sample_index, frame.n_samples, frame.sample_rate_hz)
            for window in self._assembler.feed(frame):
                self._window(window)
            self.counters.window_gaps = self._assembler.gaps
        elif isinstance(frame, ScalarReading):
            self._scalar(frame)
        elif isinstance(frame, Hello):
            _log.info("%s: device %d %s firmware %s (serial %s)", self.name, frame.device_id,
                      frame.model, frame.firmware_version, frame.serial_number)

    def _hello(self, frame: Hello) -> None:
        identity = self.source.identity
        assert identity is not None
        self._check_reopened()
        self.counters.frames += 1
        if (identity.model in (None, frame.model)
                and identity.serial_number in (None, frame.serial_number)):
            if self._verified_device != frame.device_id:
                _log.info("%s: device %d is the pinned sensor (%s %s)", self.name,
                          frame.device_id, frame.model, frame.serial_number)
            self._verified_device = frame.device_id
            self.identity_problem = None
            return
        self.counters.identity_mismatches += 1
        self._verified_device = None
        self._assembler = WindowAssembler(self.source.window_samples)  # nothing carries over
        self._clock = SampleClock()
        self.identity_problem = (
            f"device {frame.device_id} is model {frame.model!r}, serial {frame.serial_number!r};"
            f" expected {identity.describe()}"
        )
        _log.warning("%s: another sensor on the port, its data is not taken as %s: %s",
                     self.name, ", ".join(sorted({a for a, _ in self._keys})),
                     self.identity_problem)

    def _scalar(self, frame: ScalarReading) -> None:
        value = float(frame.value)
        if not math.isfinite(value):
            return
        if frame.quantity == Quantity.TEMPERATURE_C:
            for key in self._keys:
                self.table.add_temperature(key, value)
        elif frame.quantity == Quantity.SPEED_RPM:
            self._speed_rpm = (time.monotonic(), value)
            for key in self._keys:
                self.table.set_scalars(key, {"speed_rpm": value})
        elif frame.quantity in _SCALAR_FEATURES:
            name, factor = _SCALAR_FEATURES[frame.quantity]
            for key in self._keys:
                self.table.set_scalars(key, {name: value * factor})

    def _speed_rpm_of(self, asset: AssetConfig) -> float:
        """The device's recent speed reading, else the asset's nominal speed."""
        if self._speed_rpm is not None:
            at, rpm = self._speed_rpm
            if time.monotonic() - at < _SPEED_MAX_AGE_S and rpm > 0:
                return rpm
        return asset.nominal_speed_rpm

    def _window(self, window: Window) -> None:
        self.counters.windows += 1
        # Capture time of the window's last sample, from the device's sample counter.
        end = window.first_sample_index + window.samples_ms2.shape[-1]
        ts = self._clock.to_utc(end) or utc_now()
        n_channels = window.samples_ms2.shape[0]
        for (asset_id, bearing), channels in self._groups.items():
            usable = [(c, key) for c, key in channels if c < n_channels]
            if not usable:
                continue
            speed_rpm = self._speed_rpm_of(self._assets[asset_id])
            waves = window.samples_ms2[[c for c, _ in usable]]
            try:
                features = extract_features(
                    waves, window.sample_rate_hz, shaft_hz=rpm_to_hz(speed_rpm), bearing=bearing,
                )
            except ValueError as err:
                self.counters.feature_errors += 1
                _log.warning("%s: features failed for %s: %s", self.name, asset_id, err)
                continue
            for i, (c, key) in enumerate(usable):
                raw = RawWindow(
                    np.asarray(window.samples_ms2[c], dtype=np.float32),
                    window.sample_rate_hz, ts, speed_rpm,
                )
                values = {name: float(arr[i]) for name, arr in features.items()}
                self.table.add_window(key, values, window.duration_s, raw)
