"""Ironwatch firmware_bridge: the sensor-firmware serial protocol and Modbus device profiles.

The codec is re-exported here; the serial transport and the Modbus poller live in their
own modules (`firmware_bridge.serial_transport`, `firmware_bridge.modbus_poller`) so that
importing the codec pulls in neither pyserial nor pymodbus.
"""

from __future__ import annotations

from firmware_bridge._errors import FirmwareBridgeError
from firmware_bridge.protocol import (
    Ack,
    DecoderStats,
    ErrorReport,
    FirmwareProtocolError,
    Frame,
    FrameDecoder,
    Heartbeat,
    Hello,
    LocalProtocolError,
    Nack,
    NackReason,
    Quantity,
    RemoteProtocolError,
    SampleBlock,
    ScalarReading,
    encode,
)

__all__ = [
    "Ack",
    "DecoderStats",
    "ErrorReport",
    "FirmwareBridgeError",
    "FirmwareProtocolError",
    "Frame",
    "FrameDecoder",
    "Heartbeat",
    "Hello",
    "LocalProtocolError",
    "Nack",
    "NackReason",
    "Quantity",
    "RemoteProtocolError",
    "SampleBlock",
    "ScalarReading",
    "encode",
]
