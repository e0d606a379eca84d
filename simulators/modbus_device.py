"""A simulated Modbus device (vibration transmitter or motor drive) backed by a `Machine`.

Like a real transmitter it computes its own values: once per second it renders the next
second of its accelerometer waveform and runs `models.features` on it, then writes the
results into its registers through the firmware_bridge profile, so a plain Modbus client
reads exactly what the profile's scaling says.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from firmware_bridge.modbus_profile import DeviceProfile
from firmware_bridge.modbus_sim import ProfileServer
from models.features import extract_features
from simulators.machine import Machine
from simulators.spec import ISO_ZONE_LIMITS_MMS

__all__ = ["ModbusDevice", "ModbusDeviceStats", "device_values"]

_log = logging.getLogger(__name__)

# generic_vibration_transmitter status bits (see its profile): 2 alarm, 3 warning.
_STATUS_ALARM = 1 << 2
_STATUS_WARNING = 1 << 3
_HEATSINK_RISE_C = 15.0  # drive heatsink over ambient at full load; bearings don't heat it


@dataclass
class ModbusDeviceStats:
    updates: int = 0
    last_values: Mapping[str, float] | None = None


def device_values(
    machine: Machine, waveform: np.ndarray, *, energy_kwh: float = 0.0
) -> dict[str, float]:
    """Every value a profile may ask for, computed from one waveform window (channel 0)."""
    fs = machine.sample_rate_hz
    spec = machine.spec
    feats = extract_features(waveform[0], fs, shaft_hz=spec.shaft_hz, bearing=spec.bearing)
    scalars = machine.scalars()
    velocity = float(feats["velocity_rms_mms"])
    _, warn, alarm = ISO_ZONE_LIMITS_MMS[(spec.iso_group, spec.foundation)]
    status = (_STATUS_ALARM if velocity >= alarm else 0) | (
        _STATUS_WARNING if velocity >= warn else 0
    )
    return {
        "velocity_rms_mms": velocity,
        "accel_rms_ms2": float(feats["accel_rms_ms2"]),
        "accel_peak_ms2": float(feats["accel_peak_ms2"]),
        "temperature_c": scalars["temperature_c"],
        "status_word": float(status),
        "speed_rpm": scalars["speed_rpm"],
        "current_a": scalars["current_a"],
        "power_kw": scalars["power_kw"],
        "load_pct": scalars["load_pct"],
        "energy_kwh": energy_kwh,
        "fault_code": 0.0,
        "running": 1.0 if scalars["speed_rpm"] > 0 else 0.0,
    }


class ModbusDevice:
    """Serves a machine's values over Modbus TCP or RTU, refreshed every ``update_period_s``."""

    def __init__(
        self,
        machine: Machine,
        profile: DeviceProfile,
        *,
        transport: Literal["tcp", "rtu"],
        host: str = "127.0.0.1",
        port: int = 502,
        serial_port: str | None = None,
        baudrate: int = 19_200,
        unit_id: int = 1,
        update_period_s: float = 1.0,
    ) -> None:
        self.machine = machine
        self.profile = profile
        self.unit_id = unit_id
        self.update_period_s = update_period_s
        self.stats = ModbusDeviceStats()
        self._energy_kwh = 0.0
        self._stop = threading.Event()
        self.server = ProfileServer(
            {unit_id: profile}, transport=transport, host=host, port=port,
            serial_port=serial_port, baudrate=baudrate,
        )
        self._keys = set(profile.keys)

    def _window(self) -> np.ndarray:
        """Render one update period of waveform, so machine age keeps pace with wall time."""
        n = round(self.update_period_s * self.machine.sample_rate_hz)
        return self.machine.render(max(n, 1024))

    def update(self) -> dict[str, float]:
        """Advance the machine by one period and write its values into the registers."""
        age_before = self.machine.age_h
        x = self._window()
        values = device_values(self.machine, x, energy_kwh=self._energy_kwh)
        # Energy integrates power over machine time: an accelerated machine uses energy faster.
        self._energy_kwh += values["power_kw"] * (self.machine.age_h - age_before)
        if self.profile.name == "motor_drive":
            # A drive reports its heatsink, which follows load and ambient, not the bearings.
            spec = self.machine.spec
            values["temperature_c"] = spec.ambient_c + _HEATSINK_RISE_C * spec.load_pct / 100.0
        wanted = {k: v for k, v in values.items() if k in self._keys and math.isfinite(v)}
        self.server.set_values(self.unit_id, wanted)
        self.stats.updates += 1
        self.stats.last_values = wanted
        return wanted

    def stop(self) -> None:
        self._stop.set()

    def run(self, stop: threading.Event | None = None) -> ModbusDeviceStats:
        """Serve until stopped; the first values are in the registers before clients connect."""
        if stop is not None:
            self._stop = stop
        self.update()
        self.server.start()
        _log.info("modbus device %s serving unit %d", self.profile.name, self.unit_id)
        try:
            next_t = time.monotonic() + self.update_period_s
            while not self._stop.wait(max(0.0, next_t - time.monotonic())):
                self.update()
                next_t += self.update_period_s
                # After a stall, skip missed ticks rather than rendering a burst.
                next_t = max(next_t, time.monotonic())
        finally:
            self.server.stop()
        return self.stats
