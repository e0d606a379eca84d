"""Acquisition: one coordinator per source (serial firmware protocol, Modbus), one PointTable."""

from __future__ import annotations

from edge_agent.acquisition._points import PointKey, PointTable, RawWindow
from edge_agent.acquisition._windows import Window, WindowAssembler
from edge_agent.acquisition.modbus import ModbusCoordinator, ModbusCounters
from edge_agent.acquisition.serial import SerialCoordinator, SerialCounters

__all__ = [
    "ModbusCoordinator",
    "ModbusCounters",
    "PointKey",
    "PointTable",
    "RawWindow",
    "SerialCoordinator",
    "SerialCounters",
    "Window",
    "WindowAssembler",
]
