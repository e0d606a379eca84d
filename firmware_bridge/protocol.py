"""The firmware serial protocol, sans-IO: `encode(frame)` -> bytes, `FrameDecoder.feed` -> frames.

This module is the public surface; the layout lives in `_codec`, the frames in `_frames`,
the streaming decoder in `_decoder`. docs/firmware-protocol.md describes the wire format.
"""

from __future__ import annotations

from firmware_bridge._codec import DELIMITER, MAX_ENCODED_SIZE, decode_frame, encode
from firmware_bridge._decoder import DecoderStats, FrameDecoder
from firmware_bridge._errors import (
    CrcMismatchError,
    FirmwareProtocolError,
    LocalProtocolError,
    MalformedFrameError,
    RemoteProtocolError,
    UnknownFrameTypeError,
    UnsupportedVersionError,
)
from firmware_bridge._frames import (
    MAX_DEVICE_ID,
    MAX_PAYLOAD_SIZE,
    MAX_STRING_BYTES,
    PROTOCOL_VERSION,
    SEQ_MODULUS,
    Ack,
    ErrorReport,
    Frame,
    FrameType,
    Heartbeat,
    Hello,
    Nack,
    NackReason,
    Quantity,
    SampleBlock,
    ScalarReading,
)

__all__ = [
    "DELIMITER",
    "MAX_DEVICE_ID",
    "MAX_ENCODED_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MAX_STRING_BYTES",
    "PROTOCOL_VERSION",
    "SEQ_MODULUS",
    "Ack",
    "CrcMismatchError",
    "DecoderStats",
    "ErrorReport",
    "FirmwareProtocolError",
    "Frame",
    "FrameDecoder",
    "FrameType",
    "Heartbeat",
    "Hello",
    "LocalProtocolError",
    "MalformedFrameError",
    "Nack",
    "NackReason",
    "Quantity",
    "RemoteProtocolError",
    "SampleBlock",
    "ScalarReading",
    "UnknownFrameTypeError",
    "UnsupportedVersionError",
    "decode_frame",
    "encode",
]
