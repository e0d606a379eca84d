"""Ironwatch simulators: physics-based machines with injected faults and ground-truth RUL.

The physics (`Machine`, `MachineSpec`, `Degradation`) is importable without pyserial,
pymodbus or paho-mqtt; the device shells (`serial_device`, `modbus_device`, `fleet`) import
those themselves.
"""

from __future__ import annotations

from simulators.degradation import Degradation
from simulators.machine import DEFAULT_SAMPLE_RATE_HZ, GroundTruth, Machine
from simulators.spec import BEARINGS, FaultMode, MachineSpec, SpecError, iso_zone, load_spec

__all__ = [
    "BEARINGS",
    "DEFAULT_SAMPLE_RATE_HZ",
    "Degradation",
    "FaultMode",
    "GroundTruth",
    "Machine",
    "MachineSpec",
    "SpecError",
    "iso_zone",
    "load_spec",
]
