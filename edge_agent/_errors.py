"""The edge agent's errors: one base class, local configuration faults kept apart."""

from __future__ import annotations

__all__ = ["ConfigError", "EdgeError", "OutboxError"]


class EdgeError(Exception):
    """Base class of every error the edge agent raises on purpose."""


class ConfigError(EdgeError):
    """The gateway config file is missing, unreadable or invalid; the message names the field."""


class OutboxError(EdgeError):
    """The durable outbox could not be opened or written (disk full, corrupt file, ...)."""
