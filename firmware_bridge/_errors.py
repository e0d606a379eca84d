"""Exceptions of the firmware bridge: one package base, local and remote faults kept apart."""

from __future__ import annotations

__all__ = [
    "CrcMismatchError",
    "FirmwareBridgeError",
    "FirmwareProtocolError",
    "LocalProtocolError",
    "MalformedFrameError",
    "RemoteProtocolError",
    "UnknownFrameTypeError",
    "UnsupportedVersionError",
]


class FirmwareBridgeError(Exception):
    """Base of every error raised by `firmware_bridge`."""


class FirmwareProtocolError(FirmwareBridgeError):
    """Base of the firmware serial protocol errors (codec level)."""


class LocalProtocolError(FirmwareProtocolError, ValueError):
    """This process asked for something the protocol cannot carry (e.g. an out-of-range field)."""


class RemoteProtocolError(FirmwareProtocolError):
    """The peer sent bytes that are not a valid frame; the decoder counts and skips these."""


class CrcMismatchError(RemoteProtocolError):
    """A frame's CRC-32 does not match its contents (line noise, or two frames run together)."""


class MalformedFrameError(RemoteProtocolError):
    """A frame is not valid COBS, is too short or too long, or its payload does not parse."""


class UnsupportedVersionError(MalformedFrameError):
    """A frame carries a protocol version this decoder does not speak."""


class UnknownFrameTypeError(MalformedFrameError):
    """A frame carries a frame-type code this decoder does not know (e.g. newer firmware)."""
