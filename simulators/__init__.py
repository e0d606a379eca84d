"""Ironwatch simulators: physics-based machines with injected faults and ground-truth RUL.

Names are loaded on first use, so `ironwatch --help` (which imports `simulators.cli`) does
not pay for numpy/scipy. The device shells (`serial_device`, `modbus_device`, `fleet`)
import pyserial, pymodbus and paho-mqtt themselves.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOME = {
    "Degradation": "simulators.degradation",
    "DEFAULT_SAMPLE_RATE_HZ": "simulators.machine",
    "GroundTruth": "simulators.machine",
    "Machine": "simulators.machine",
    "BEARINGS": "simulators.spec",
    "FaultMode": "simulators.spec",
    "MachineSpec": "simulators.spec",
    "SpecError": "simulators.spec",
    "iso_zone": "simulators.spec",
    "load_spec": "simulators.spec",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'simulators' has no attribute {name!r}")
