"""Ironwatch edge agent: the gateway process.

Acquisition (serial firmware protocol, Modbus), feature extraction, a durable SQLite
outbox and MQTT publishing. Heavy modules (paho, pyserial, pymodbus) are imported by the
modules that need them, not here.
"""

from __future__ import annotations

from edge_agent._errors import ConfigError, EdgeError, OutboxError

__all__ = ["ConfigError", "EdgeError", "OutboxError"]
