"""Frame types of the firmware serial protocol: immutable values, validated on construction."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from firmware_bridge._errors import LocalProtocolError

__all__ = [
    "MAX_DEVICE_ID",
    "MAX_PAYLOAD_SIZE",
    "MAX_STRING_BYTES",
    "PROTOCOL_VERSION",
    "SEQ_MODULUS",
    "Ack",
    "ErrorReport",
    "Frame",
    "FrameType",
    "Heartbeat",
    "Hello",
    "Nack",
    "NackReason",
    "Quantity",
    "SampleBlock",
    "ScalarReading",
]

PROTOCOL_VERSION = 1
"""Version byte written by `encode`; any change to a frame layout bumps it."""

SEQ_MODULUS = 1 << 32
"""Sequence numbers are uint32 per device and wrap from 2**32 - 1 to 0."""

MAX_DEVICE_ID = 0xFFFF
MAX_PAYLOAD_SIZE = 32_768
"""Largest payload `encode` accepts: 1024 samples x 16 channels of int16 fits."""

MAX_STRING_BYTES = 255
"""Hello strings are length-prefixed with one byte, so at most 255 bytes of UTF-8."""

_U8 = 0xFF
_U16 = 0xFFFF
_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF


class FrameType(IntEnum):
    """The frame-type byte. New types may be added without a version bump."""

    HELLO = 0x01
    HEARTBEAT = 0x02
    SAMPLE_BLOCK = 0x10
    SCALAR_READING = 0x11
    ACK = 0x20
    NACK = 0x21
    ERROR_REPORT = 0x30


class Quantity(IntEnum):
    """What a `ScalarReading` measures; the name ends in its SI (or SI-derived) unit."""

    TEMPERATURE_C = 1
    SPEED_RPM = 2
    LOAD_PCT = 3
    CURRENT_A = 4
    VOLTAGE_V = 5
    POWER_KW = 6
    PRESSURE_KPA = 7
    HUMIDITY_PCT = 8
    VELOCITY_RMS_MMS = 9
    ACCEL_RMS_MS2 = 10
    ACCEL_PEAK_MS2 = 11
    DISPLACEMENT_PP_UM = 12
    SUPPLY_VOLTAGE_V = 13

    @property
    def unit(self) -> str:
        """The unit as a display string, e.g. "°C" or "m/s²"."""
        return _UNITS[self]


_UNITS: dict[Quantity, str] = {
    Quantity.TEMPERATURE_C: "°C",
    Quantity.SPEED_RPM: "rpm",
    Quantity.LOAD_PCT: "%",
    Quantity.CURRENT_A: "A",
    Quantity.VOLTAGE_V: "V",
    Quantity.POWER_KW: "kW",
    Quantity.PRESSURE_KPA: "kPa",
    Quantity.HUMIDITY_PCT: "%",
    Quantity.VELOCITY_RMS_MMS: "mm/s",
    Quantity.ACCEL_RMS_MS2: "m/s²",
    Quantity.ACCEL_PEAK_MS2: "m/s²",
    Quantity.DISPLACEMENT_PP_UM: "µm",
    Quantity.SUPPLY_VOLTAGE_V: "V",
}


class NackReason(IntEnum):
    """Why a receiver refused a frame; unknown codes from newer peers decode as plain ints."""

    UNSPECIFIED = 0
    CRC_ERROR = 1
    MALFORMED = 2
    UNSUPPORTED = 3
    BUSY = 4
    INVALID_ARGUMENT = 5


def _check_int(name: str, value: int, maximum: int) -> None:
    # Exact-type test first: it is the per-frame hot path of the decoder.
    if type(value) is int and 0 <= value <= maximum:
        return
    # bool is an int subclass; a True device id is a caller bug, not a value.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise LocalProtocolError(f"{name} must be an int in 0..{maximum}, got {value!r}")


def _check_header(device_id: int, seq: int) -> None:
    _check_int("device_id", device_id, MAX_DEVICE_ID)
    _check_int("seq", seq, _U32)


def _check_positive_finite(name: str, value: float) -> None:
    if type(value) is float and 0.0 < value < math.inf:
        return  # the hot path; NaN fails the comparison
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise LocalProtocolError(f"{name} must be a finite number > 0, got {value!r}")


def _check_string(name: str, value: str) -> None:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{name} must be a str, got {type(value).__name__}")
    if len(_utf8(name, value)) > MAX_STRING_BYTES:
        raise LocalProtocolError(f"{name} is longer than {MAX_STRING_BYTES} bytes of UTF-8")


def _utf8(name: str, value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise LocalProtocolError(f"{name} is not encodable as UTF-8: {err}") from err


@dataclass(frozen=True, slots=True)
class Hello:
    """Device information, sent by firmware at boot and on request; resets sequence tracking."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.HELLO
    device_id: int
    seq: int
    firmware_version: str
    model: str
    serial_number: str
    channels: int
    sample_rate_hz: float

    def __post_init__(self) -> None:
        _check_header(self.device_id, self.seq)
        for name in ("firmware_version", "model", "serial_number"):
            _check_string(name, getattr(self, name))
        _check_int("channels", self.channels, _U8)
        _check_positive_finite("sample_rate_hz", self.sample_rate_hz)


@dataclass(frozen=True, slots=True)
class SampleBlock:
    """A block of raw waveform samples: little-endian int16, interleaved by channel.

    Physical value = count x `scale` in the channel's SI unit (m/s² for accelerometers).
    `first_sample_index` is the device's 64-bit running sample counter, so gaps show.
    """

    FRAME_TYPE: ClassVar[FrameType] = FrameType.SAMPLE_BLOCK
    device_id: int
    seq: int
    first_sample_index: int
    sample_rate_hz: float
    channels: int
    scale: float
    samples: bytes

    def __post_init__(self) -> None:
        _check_header(self.device_id, self.seq)
        _check_int("first_sample_index", self.first_sample_index, _U64)
        _check_positive_finite("sample_rate_hz", self.sample_rate_hz)
        _check_int("channels", self.channels, _U8)
        if self.channels == 0:
            raise LocalProtocolError("channels must be >= 1")
        _check_positive_finite("scale", self.scale)
        if not isinstance(self.samples, bytes):
            raise LocalProtocolError("samples must be bytes (little-endian int16, interleaved)")
        if len(self.samples) % (2 * self.channels):
            raise LocalProtocolError(
                f"samples length {len(self.samples)} is not a multiple of"
                f" 2 x {self.channels} channels"
            )

    @property
    def n_samples(self) -> int:
        """Samples per channel in this block."""
        return len(self.samples) // (2 * self.channels)


@dataclass(frozen=True, slots=True)
class ScalarReading:
    """One slow-changing measurement (temperature, speed, load) at a device timestamp in ms."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.SCALAR_READING
    device_id: int
    seq: int
    timestamp_ms: int
    quantity: Quantity
    value: float

    def __post_init__(self) -> None:
        _check_header(self.device_id, self.seq)
        _check_int("timestamp_ms", self.timestamp_ms, _U64)
        if not isinstance(self.quantity, Quantity):
            raise LocalProtocolError(f"quantity must be a Quantity, got {self.quantity!r}")
        if not isinstance(self.value, int | float):
            raise LocalProtocolError(f"value must be a number, got {self.value!r}")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Liveness: sent by firmware when it has nothing else to say for a while."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.HEARTBEAT
    device_id: int
    seq: int
    uptime_ms: int

    def __post_init__(self) -> None:
        _check_header(self.device_id, self.seq)
        _check_int("uptime_ms", self.uptime_ms, _U64)


@dataclass(frozen=True, slots=True)
class Ack:
    """Positive acknowledgement of the frame `acked_seq` from the peer."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.ACK
    device_id: int
    seq: int
    acked_seq: int

    def __post_init__(self) -> None:
        _check_header(self.device_id, self.seq)
        _check_int("acked_seq", self.acked_seq, _U32)


@dataclass(frozen=True, slots=True)
class Nack:
    """Refusal of the frame `nacked_seq`; `reason` is a `NackReason` (an int if unknown)."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.NACK
    device_id: int
    seq: int
    nacked_seq: int
    reason: int

    def __post_init__(self) -> None:
        _check_header(self.device_id, self.seq)
        _check_int("nacked_seq", self.nacked_seq, _U32)
        _check_int("reason", self.reason, _U8)


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """A fault the device reports about itself (sensor open circuit, ADC overrun, ...)."""

    FRAME_TYPE: ClassVar[FrameType] = FrameType.ERROR_REPORT
    device_id: int
    seq: int
    code: int
    message: str

    def __post_init__(self) -> None:
        _check_header(self.device_id, self.seq)
        _check_int("code", self.code, _U16)
        if not isinstance(self.message, str):
            raise LocalProtocolError("message must be a str")
        _utf8("message", self.message)


Frame = Hello | SampleBlock | ScalarReading | Heartbeat | Ack | Nack | ErrorReport
"""Any frame of the protocol."""
