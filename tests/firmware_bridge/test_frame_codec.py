"""Byte-level tests of the firmware frame codec: known vectors, layout, field validation."""

from __future__ import annotations

import struct
import zlib

import pytest
from cobs import cobs

from firmware_bridge.protocol import (
    MAX_PAYLOAD_SIZE,
    PROTOCOL_VERSION,
    Ack,
    CrcMismatchError,
    ErrorReport,
    Frame,
    FrameType,
    Heartbeat,
    Hello,
    LocalProtocolError,
    MalformedFrameError,
    Nack,
    NackReason,
    Quantity,
    SampleBlock,
    ScalarReading,
    UnknownFrameTypeError,
    UnsupportedVersionError,
    decode_frame,
    encode,
)

# One frame per type with its wire bytes; these are the examples in docs/firmware-protocol.md.
VECTORS: list[tuple[Frame, str]] = [
    (
        Hello(7, 0, "1.2.0", "IW-VIB3", "SN0001", 3, 25600.0),
        "04 01 01 07 01 01 01 01 02 03 01 01 01 01 01 1c d9 40 05 31 2e 32 2e 30 07 49 57 2d 56"
        " 49 42 33 06 53 4e 30 30 30 31 c8 5d cb 40 00",
    ),
    (
        SampleBlock(7, 1, 0, 25600.0, 3, 0.001, struct.pack("<6h", 1, -1, 2, -2, 3, -3)),
        "04 01 10 07 02 01 01 01 01 01 01 01 01 01 01 01 01 01 01 01 01 01 0d d9 40 fc a9 f1 d2"
        " 4d 62 50 3f 03 01 04 ff ff 02 04 fe ff 03 07 fd ff 98 eb 02 89 00",
    ),
    (
        ScalarReading(7, 2, 123456, Quantity.TEMPERATURE_C, 41.5),
        "04 01 11 07 02 02 01 01 04 40 e2 01 01 01 01 01 02 01 01 01 01 01 01 08 c0 44 40 0d 8a"
        " 31 3f 00",
    ),
    (Heartbeat(7, 3, 60000), "04 01 02 07 02 03 01 01 03 60 ea 01 01 01 01 01 05 87 4a 3d 8f 00"),
    (Ack(0, 0, 3), "03 01 20 01 01 01 01 01 02 03 01 01 05 39 aa 59 74 00"),
    (
        Nack(0, 1, 2, NackReason.CRC_ERROR),
        "03 01 21 01 02 01 01 01 02 02 01 01 06 01 25 7f ca 4b 00",
    ),
    (
        ErrorReport(7, 4, 17, "ADC overrun"),
        "04 01 30 07 02 04 01 01 02 11 10 41 44 43 20 6f 76 65 72 72 75 6e a9 6d eb 75 00",
    ),
]


@pytest.mark.parametrize(("frame", "wire_hex"), VECTORS, ids=lambda v: type(v).__name__)
def test_known_vectors_encode_and_decode(frame: Frame, wire_hex: str) -> None:
    wire = bytes.fromhex(wire_hex)
    assert encode(frame) == wire
    assert decode_frame(wire[:-1]) == frame


def test_layout_matches_independent_construction() -> None:
    """Header, payload and CRC built by hand with struct + zlib + cobs equal encode()."""
    frame = ScalarReading(513, 0xDEADBEEF, 2**40, Quantity.SPEED_RPM, 1480.25)
    raw = struct.pack("<BBHI", 1, 0x11, 513, 0xDEADBEEF) + struct.pack("<QHd", 2**40, 2, 1480.25)
    raw += struct.pack("<I", zlib.crc32(raw))
    assert encode(frame) == cobs.encode(raw) + b"\x00"


def test_wire_bytes_contain_one_delimiter_at_the_end() -> None:
    samples = bytes(range(256)) * 24  # plenty of zero bytes inside the payload
    wire = encode(SampleBlock(1, 2, 3, 25600.0, 3, 1.0, samples))
    assert wire.count(0) == 1
    assert wire[-1] == 0


def test_sample_block_n_samples_and_values() -> None:
    block = SampleBlock(1, 0, 1000, 25600.0, 3, 0.01, struct.pack("<12h", *range(-6, 6)))
    assert block.n_samples == 4
    decoded = decode_frame(encode(block)[:-1])
    assert isinstance(decoded, SampleBlock)
    assert struct.unpack("<12h", decoded.samples)[3:6] == (-3, -2, -1)  # second sample, ch 0..2


def _raw_frame(version: int, ftype: int, payload: bytes) -> bytes:
    raw = struct.pack("<BBHI", version, ftype, 1, 1) + payload
    return bytes(cobs.encode(raw + struct.pack("<I", zlib.crc32(raw))))


def test_decode_rejects_bad_crc() -> None:
    wire = bytearray(encode(Heartbeat(1, 1, 5))[:-1])
    raw = bytearray(cobs.decode(bytes(wire)))
    raw[9] ^= 0x01
    with pytest.raises(CrcMismatchError):
        decode_frame(cobs.encode(bytes(raw)))


def test_decode_rejects_unknown_version_and_type() -> None:
    with pytest.raises(UnsupportedVersionError):
        decode_frame(_raw_frame(PROTOCOL_VERSION + 1, FrameType.HEARTBEAT, bytes(8)))
    with pytest.raises(UnknownFrameTypeError):
        decode_frame(_raw_frame(PROTOCOL_VERSION, 0x7F, bytes(8)))


@pytest.mark.parametrize(
    ("ftype", "payload"),
    [
        (FrameType.HEARTBEAT, bytes(7)),  # short
        (FrameType.HEARTBEAT, bytes(9)),  # trailing byte
        (FrameType.SCALAR_READING, struct.pack("<QHd", 0, 999, 1.0)),  # unknown quantity
        (FrameType.SAMPLE_BLOCK, struct.pack("<QddB", 0, 25600.0, 1.0, 3) + bytes(5)),  # ragged
        (FrameType.SAMPLE_BLOCK, struct.pack("<QddB", 0, 25600.0, 1.0, 0)),  # zero channels
        (FrameType.SAMPLE_BLOCK, struct.pack("<QddB", 0, float("nan"), 1.0, 1)),  # NaN rate
        (FrameType.HELLO, struct.pack("<Bd", 3, 100.0) + b"\x05ab"),  # string runs past end
        (FrameType.ERROR_REPORT, struct.pack("<H", 1) + b"\xff\xfe"),  # not UTF-8
        (FrameType.ACK, b""),
    ],
)
def test_decode_rejects_malformed_payloads(ftype: int, payload: bytes) -> None:
    with pytest.raises(MalformedFrameError):
        decode_frame(_raw_frame(PROTOCOL_VERSION, ftype, payload))


@pytest.mark.parametrize("chunk", [b"", b"\x01", b"\x05ab", b"\x02a\x00", b"\x03abc"])
def test_decode_rejects_bad_cobs_or_short_frames(chunk: bytes) -> None:
    with pytest.raises(MalformedFrameError):
        decode_frame(chunk)


def test_unknown_nack_reason_decodes_as_int() -> None:
    frame = decode_frame(encode(Nack(1, 1, 1, 200))[:-1])
    assert isinstance(frame, Nack)
    assert frame.reason == 200
    assert not isinstance(frame.reason, NackReason)
    known = decode_frame(encode(Nack(1, 1, 1, 4))[:-1])
    assert isinstance(known, Nack)
    assert known.reason is NackReason.BUSY


def test_scalar_value_nan_and_inf_survive() -> None:
    for value in (float("inf"), float("-inf")):
        frame = decode_frame(encode(ScalarReading(1, 1, 1, Quantity.LOAD_PCT, value))[:-1])
        assert isinstance(frame, ScalarReading)
        assert frame.value == value
    nan = decode_frame(encode(ScalarReading(1, 1, 1, Quantity.LOAD_PCT, float("nan")))[:-1])
    assert isinstance(nan, ScalarReading)
    assert nan.value != nan.value


@pytest.mark.parametrize(
    "make",
    [
        lambda: Heartbeat(-1, 0, 0),
        lambda: Heartbeat(0x10000, 0, 0),
        lambda: Heartbeat(1, 2**32, 0),
        lambda: Heartbeat(1, 0, 2**64),
        lambda: Heartbeat(True, 0, 0),
        lambda: Ack(1, 0, -1),
        lambda: Nack(1, 0, 0, 256),
        lambda: ErrorReport(1, 0, 70000, "x"),
        lambda: ErrorReport(1, 0, 1, "\ud800"),
        lambda: Hello(1, 0, "x" * 256, "m", "s", 1, 1.0),
        lambda: Hello(1, 0, "v", "m", "s", 1, 0.0),
        lambda: Hello(1, 0, "v", "m", "s", 300, 1.0),
        lambda: SampleBlock(1, 0, 0, 25600.0, 0, 1.0, b""),
        lambda: SampleBlock(1, 0, 0, 25600.0, 3, 1.0, bytes(5)),
        lambda: SampleBlock(1, 0, 0, float("inf"), 1, 1.0, b""),
        lambda: SampleBlock(1, 0, 0, 25600.0, 1, -1.0, b""),
        lambda: SampleBlock(1, 0, -1, 25600.0, 1, 1.0, b""),
        lambda: ScalarReading(1, 0, 0, 1, 1.0),  # type: ignore[arg-type]  # int is not a Quantity
    ],
)
def test_invalid_fields_raise_local_error(make: object) -> None:
    assert callable(make)
    with pytest.raises(LocalProtocolError):
        make()


def test_local_error_is_a_value_error_and_protocol_error() -> None:
    with pytest.raises(ValueError):
        Heartbeat(-1, 0, 0)


def test_oversized_payload_refused_by_encode() -> None:
    ok = SampleBlock(1, 0, 0, 1.0, 1, 1.0, bytes(MAX_PAYLOAD_SIZE - 26))  # largest even size
    assert decode_frame(encode(ok)[:-1]) == ok
    with pytest.raises(LocalProtocolError):
        encode(SampleBlock(1, 0, 0, 1.0, 1, 1.0, bytes(MAX_PAYLOAD_SIZE - 24)))
    with pytest.raises(LocalProtocolError):
        encode(ErrorReport(1, 0, 0, "x" * MAX_PAYLOAD_SIZE))


def test_quantity_names_carry_units() -> None:
    for q in Quantity:
        assert q.name.rsplit("_", 1)[1] in {
            "C",
            "RPM",
            "PCT",
            "A",
            "V",
            "KW",
            "KPA",
            "MMS",
            "MS2",
            "UM",
        }
        assert q.unit
    assert Quantity.ACCEL_RMS_MS2.unit == "m/s²"
