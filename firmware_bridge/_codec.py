"""Byte layout of one frame: pack a frame to wire bytes, parse one COBS chunk back to a frame.

Layout before COBS (little-endian): version u8, type u8, device_id u16, seq u32, payload,
CRC-32/ISO-HDLC (zlib.crc32) u32 over everything before it. On the wire the whole is
COBS-encoded and followed by one 0x00 delimiter. docs/firmware-protocol.md has the tables.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Any

from cobs import cobs

from firmware_bridge._errors import (
    CrcMismatchError,
    LocalProtocolError,
    MalformedFrameError,
    UnknownFrameTypeError,
    UnsupportedVersionError,
)
from firmware_bridge._frames import (
    MAX_PAYLOAD_SIZE,
    PROTOCOL_VERSION,
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

__all__ = ["DELIMITER", "MAX_ENCODED_SIZE", "decode_frame", "encode", "max_encoded_size"]

DELIMITER = b"\x00"

_HEADER = struct.Struct("<BBHI")
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size
CRC_SIZE = _CRC.size
# CRC-32/ISO-HDLC run over data followed by its own little-endian CRC always yields this
# residue, so one zlib.crc32 call over the whole frame checks it without slicing.
_CRC32_RESIDUE = 0x2144DF1C

_HELLO_FIXED = struct.Struct("<Bd")  # channels, sample_rate_hz; then three u8-prefixed strings
_HEARTBEAT = struct.Struct("<Q")
_SAMPLE_FIXED = struct.Struct("<QddB")  # first_sample_index, sample_rate_hz, scale, channels
_SCALAR = struct.Struct("<QHd")
_ACK = struct.Struct("<I")
_NACK = struct.Struct("<IB")
_ERROR_FIXED = struct.Struct("<H")  # code; the rest of the payload is the UTF-8 message


def max_encoded_size(raw_size: int) -> int:
    """Worst-case COBS size (without delimiter) of a raw frame of raw_size bytes."""
    return raw_size + raw_size // 254 + 1


MAX_ENCODED_SIZE = max_encoded_size(HEADER_SIZE + MAX_PAYLOAD_SIZE + CRC_SIZE)
"""Largest COBS chunk a valid frame can produce; the decoder's default bound."""


def _str_field(value: str) -> bytes:
    data = value.encode("utf-8")
    return bytes((len(data),)) + data


def _payload(frame: Frame) -> bytes:
    # Field ranges were checked when the frame was constructed, so packing cannot overflow.
    match frame:
        case SampleBlock():
            return (
                _SAMPLE_FIXED.pack(
                    frame.first_sample_index, frame.sample_rate_hz, frame.scale, frame.channels
                )
                + frame.samples
            )
        case ScalarReading():
            return _SCALAR.pack(frame.timestamp_ms, frame.quantity, frame.value)
        case Heartbeat():
            return _HEARTBEAT.pack(frame.uptime_ms)
        case Hello():
            return (
                _HELLO_FIXED.pack(frame.channels, frame.sample_rate_hz)
                + _str_field(frame.firmware_version)
                + _str_field(frame.model)
                + _str_field(frame.serial_number)
            )
        case Ack():
            return _ACK.pack(frame.acked_seq)
        case Nack():
            return _NACK.pack(frame.nacked_seq, frame.reason)
        case ErrorReport():
            return _ERROR_FIXED.pack(frame.code) + frame.message.encode("utf-8")
    raise LocalProtocolError(f"not a frame: {type(frame).__name__}")


def encode(frame: Frame) -> bytes:
    """Complete wire bytes for one frame: COBS(header + payload + CRC-32) + 0x00."""
    payload = _payload(frame)
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise LocalProtocolError(
            f"{type(frame).__name__} payload is {len(payload)} bytes, max {MAX_PAYLOAD_SIZE}"
        )
    raw = _HEADER.pack(PROTOCOL_VERSION, frame.FRAME_TYPE, frame.device_id, frame.seq) + payload
    encoded: bytes = cobs.encode(raw + _CRC.pack(zlib.crc32(raw)))
    return encoded + DELIMITER


def _exact(st: struct.Struct, payload: bytes, what: str) -> tuple[Any, ...]:
    if len(payload) != st.size:
        raise MalformedFrameError(f"{what} payload is {len(payload)} bytes, expected {st.size}")
    return st.unpack(payload)


def _parse_hello(device_id: int, seq: int, raw: bytes, end: int) -> Frame:
    pos = HEADER_SIZE + _HELLO_FIXED.size
    if end < pos:
        raise MalformedFrameError("Hello payload too short")
    channels, rate = _HELLO_FIXED.unpack_from(raw, HEADER_SIZE)
    texts: list[str] = []
    for _ in range(3):
        if pos >= end:
            raise MalformedFrameError("Hello string field truncated")
        n = raw[pos]
        pos += 1
        if pos + n > end:
            raise MalformedFrameError("Hello string field runs past the payload")
        texts.append(raw[pos : pos + n].decode("utf-8"))
        pos += n
    if pos != end:
        raise MalformedFrameError(f"Hello payload has {end - pos} trailing bytes")
    return Hello(device_id, seq, texts[0], texts[1], texts[2], channels, rate)


def _parse_sample_block(device_id: int, seq: int, raw: bytes, end: int) -> Frame:
    start = HEADER_SIZE + _SAMPLE_FIXED.size
    if end < start:
        raise MalformedFrameError("SampleBlock payload too short")
    first, rate, scale, channels = _SAMPLE_FIXED.unpack_from(raw, HEADER_SIZE)
    return SampleBlock(device_id, seq, first, rate, channels, scale, raw[start:end])


def _parse_scalar(device_id: int, seq: int, raw: bytes, end: int) -> Frame:
    ts, q, value = _exact(_SCALAR, raw[HEADER_SIZE:end], "ScalarReading")
    try:
        quantity = Quantity(q)
    except ValueError as err:
        raise MalformedFrameError(f"unknown quantity code {q}") from err
    return ScalarReading(device_id, seq, ts, quantity, value)


def _parse_heartbeat(device_id: int, seq: int, raw: bytes, end: int) -> Frame:
    (uptime,) = _exact(_HEARTBEAT, raw[HEADER_SIZE:end], "Heartbeat")
    return Heartbeat(device_id, seq, uptime)


def _parse_ack(device_id: int, seq: int, raw: bytes, end: int) -> Frame:
    (acked,) = _exact(_ACK, raw[HEADER_SIZE:end], "Ack")
    return Ack(device_id, seq, acked)


def _parse_nack(device_id: int, seq: int, raw: bytes, end: int) -> Frame:
    nacked, code = _exact(_NACK, raw[HEADER_SIZE:end], "Nack")
    reason: int = NackReason(code) if code in NackReason._value2member_map_ else code
    return Nack(device_id, seq, nacked, reason)


def _parse_error(device_id: int, seq: int, raw: bytes, end: int) -> Frame:
    start = HEADER_SIZE + _ERROR_FIXED.size
    if end < start:
        raise MalformedFrameError("ErrorReport payload too short")
    (code,) = _ERROR_FIXED.unpack_from(raw, HEADER_SIZE)
    return ErrorReport(device_id, seq, code, raw[start:end].decode("utf-8"))


_Parser = Callable[[int, int, bytes, int], Frame]
_PARSERS: dict[int, _Parser] = {
    FrameType.HELLO: _parse_hello,
    FrameType.HEARTBEAT: _parse_heartbeat,
    FrameType.SAMPLE_BLOCK: _parse_sample_block,
    FrameType.SCALAR_READING: _parse_scalar,
    FrameType.ACK: _parse_ack,
    FrameType.NACK: _parse_nack,
    FrameType.ERROR_REPORT: _parse_error,
}


def decode_frame(chunk: bytes) -> Frame:
    """Parse one COBS chunk (the bytes between two delimiters) into a frame.

    Raises a `RemoteProtocolError` subclass saying what is wrong; `FrameDecoder` catches it.
    """
    try:
        raw: bytes = cobs.decode(chunk)
    except cobs.DecodeError as err:
        raise MalformedFrameError(f"invalid COBS: {err}") from err
    end = len(raw) - CRC_SIZE
    if end < HEADER_SIZE:
        raise MalformedFrameError(f"frame of {len(raw)} bytes is shorter than header + CRC")
    if zlib.crc32(raw) != _CRC32_RESIDUE:
        raise CrcMismatchError("CRC-32 mismatch")
    version, ftype, device_id, seq = _HEADER.unpack_from(raw)
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersionError(
            f"protocol version {version}, this decoder speaks {PROTOCOL_VERSION}"
        )
    parser = _PARSERS.get(ftype)
    if parser is None:
        raise UnknownFrameTypeError(f"unknown frame type 0x{ftype:02x}")
    try:
        return parser(device_id, seq, raw, end)
    except (LocalProtocolError, UnicodeDecodeError) as err:
        # Field values that pass the CRC but break an invariant (NaN rate, zero channels).
        raise MalformedFrameError(f"invalid {FrameType(ftype).name} fields: {err}") from err
