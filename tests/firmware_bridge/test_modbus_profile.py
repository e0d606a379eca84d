"""Modbus device profiles: loading, error messages, word/byte order, grouping, round-trips."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.modbus_profile import (
    DeviceProfile,
    DType,
    Order,
    ProfileError,
    ReadBlock,
    RegisterSpec,
    Table,
)

MINIMAL = """
[device]
name = "t"

[[register]]
key = "speed_rpm"
address = 10
table = "holding"
dtype = "uint16"
unit = "rpm"
"""


def test_shipped_profiles_load() -> None:
    assert set(DeviceProfile.available()) >= {"generic_vibration_transmitter", "motor_drive"}
    vib = DeviceProfile.load("generic_vibration_transmitter")
    assert {"velocity_rms_mms", "temperature_c", "status_word"} <= set(vib.keys)
    assert vib.register("velocity_rms_mms").unit == "mm/s"
    drive = DeviceProfile.load("motor_drive")
    assert {"speed_rpm", "current_a", "power_kw", "temperature_c", "fault_code"} <= set(drive.keys)
    assert drive.register("temperature_c").poll_interval_s == 5.0


def test_load_by_path(tmp_path: Path) -> None:
    path = tmp_path / "my_device.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    profile = DeviceProfile.load(path)
    assert profile.name == "t"
    assert DeviceProfile.load(str(path)).registers == profile.registers


def test_unknown_profile_name_lists_available() -> None:
    with pytest.raises(ProfileError, match="motor_drive"):
        DeviceProfile.load("no_such_device")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('dtype = "uint16"', 'dtype = "float64"'), r"broken.toml:5:.*'speed_rpm'.*dtype.*float64"),
        (('unit = "rpm"', 'unit = "rps"'), r"broken.toml:5:.*says 'rpm' but unit is 'rps'"),
        (("address = 10", "address = 70000"), r"broken.toml:5:.*address 70000"),
        (("address = 10", 'address = "ten"'), r"broken.toml:5:.*'address' must be int"),
        (('table = "holding"', 'table = "coil"'), r"dtype uint16 does not fit the coil"),
        (('unit = "rpm"', 'unit = "rpm"\nscale = 0'), r"scale must be finite and non-zero"),
        (('unit = "rpm"', 'unit = "rpm"\nwordorder = "big"'), r"unknown field.*wordorder"),
        (('key = "speed_rpm"', 'key = "Speed"'), r"snake_case"),
        (('key = "speed_rpm"\n', ""), r"broken.toml:5:.*missing field 'key'"),
        (('name = "t"', "name = "), r"not valid TOML.*line 3"),
        (("[device]", "[devise]"), r"unknown top-level"),
    ],
)
def test_broken_files_say_where(change: tuple[str, str], message: str, tmp_path: Path) -> None:
    text = MINIMAL.replace(*change)
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=message) as info:
        DeviceProfile.load(path)
    assert "broken.toml" in str(info.value)


def test_overlapping_and_duplicate_registers_refused() -> None:
    second = MINIMAL.split("[[register]]")[1]
    overlap = (
        MINIMAL
        + "[[register]]"
        + second.replace("speed_rpm", "other_rpm")
        .replace("uint16", "uint32")
        .replace("address = 10", "address = 9")
    )
    with pytest.raises(ProfileError, match="overlaps"):
        DeviceProfile.from_toml(overlap)
    with pytest.raises(ProfileError, match="twice"):
        DeviceProfile.from_toml(MINIMAL + "[[register]]" + second.replace("10", "11"))


def _spec(
    dtype: DType, word: Order = "big", byte: Order = "big", scale: float = 1.0, offset: float = 0.0
) -> RegisterSpec:
    return RegisterSpec("x", 0, Table.HOLDING, dtype, "", scale, offset, word, byte)


@pytest.mark.parametrize(
    ("word", "byte", "words"),
    [
        # 123.456 as float32 is 0x42F6E979: ABCD, CDAB, BADC, DCBA layouts.
        ("big", "big", [0x42F6, 0xE979]),
        ("little", "big", [0xE979, 0x42F6]),
        ("big", "little", [0xF642, 0x79E9]),
        ("little", "little", [0x79E9, 0xF642]),
    ],
)
def test_float32_word_and_byte_orders(word: Order, byte: Order, words: list[int]) -> None:
    spec = _spec(DType.FLOAT32, word, byte)
    assert spec.decode(words) == pytest.approx(123.456, rel=1e-7)
    assert spec.encode(struct.unpack(">f", bytes.fromhex("42F6E979"))[0]) == words


def test_signed_scaling_and_offset() -> None:
    spec = _spec(DType.INT16, scale=0.1, offset=-40.0)
    assert spec.decode([0xFFFF]) == pytest.approx(-40.1)
    assert spec.encode(-40.1) == [0xFFFF]
    assert _spec(DType.INT32).decode([0xFFFF, 0xFFFE]) == -2
    assert _spec(DType.UINT32, word="little").decode([0x0001, 0x0002]) == 0x0002_0001


def test_encode_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ProfileError, match="outside uint16"):
        _spec(DType.UINT16).encode(-1.0)
    with pytest.raises(ProfileError):
        _spec(DType.INT16, scale=0.1).encode(4000.0)
    with pytest.raises(ProfileError):
        _spec(DType.UINT16).encode(math.nan)
    with pytest.raises(ProfileError, match="no value"):
        DeviceProfile.load("motor_drive").encode({"speed_rps": 1.0})


def test_read_blocks_group_contiguous_registers() -> None:
    drive = DeviceProfile.load("motor_drive")
    blocks = drive.read_blocks()
    assert blocks == [
        ReadBlock(
            Table.HOLDING,
            100,
            6,
            ("speed_rpm", "current_a", "power_kw", "temperature_c", "energy_kwh"),
        ),
        ReadBlock(Table.HOLDING, 120, 1, ("fault_code",)),
        ReadBlock(Table.DISCRETE, 0, 1, ("running",)),
    ]
    vib = DeviceProfile.load("generic_vibration_transmitter")
    assert len(vib.read_blocks()) == 1


def test_read_blocks_respect_gap_and_pdu_limit() -> None:
    regs = tuple(RegisterSpec(f"r{i}", i * 3, Table.INPUT, DType.UINT16, "") for i in range(100))
    assert len(DeviceProfile("p", regs, max_gap=0).read_blocks()) == 100
    joined = DeviceProfile("p", regs, max_gap=2).read_blocks()
    assert all(b.count <= 125 for b in joined)
    assert sum(len(b.keys) for b in joined) == 100
    assert len(joined) == 3  # 298 registers span, at most 125 per request


def test_decode_only_whole_values_inside_the_read() -> None:
    drive = DeviceProfile.load("motor_drive")
    words = drive.encode({"speed_rpm": 1500, "energy_kwh": 100.0})[Table.HOLDING]
    got = drive.decode("holding", 100, [words[100], 0, 0, 0, words[104]])
    assert got["speed_rpm"] == 1500
    assert "energy_kwh" not in got  # its second word was not in the read


ORDERS: list[Order] = ["big", "little"]
_register_specs = st.builds(
    _spec,
    st.sampled_from([d for d in DType if d is not DType.BOOL]),
    st.sampled_from(ORDERS),
    st.sampled_from(ORDERS),
    st.sampled_from([1.0, 0.1, 0.01, 0.5, 10.0, -1.0]),
    st.sampled_from([0.0, -40.0, 273.15]),
)


@given(_register_specs, st.data())
def test_words_round_trip_through_values(spec: RegisterSpec, data: st.DataObject) -> None:
    """Any register contents a device may hold decode to a value that encodes back to them."""
    words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=spec.count, max_size=spec.count))
    value = spec.decode(words)
    if spec.dtype is DType.FLOAT32 and not math.isfinite((value - spec.offset) / spec.scale):
        return  # NaN/inf patterns do not compare; covered by the value round-trip below
    if spec.dtype is DType.FLOAT32:
        # Scaling in float64 then storing float32 may move the last bit; the value must not.
        assert spec.decode(spec.encode(value)) == pytest.approx(value, rel=1e-6)
    else:
        assert spec.encode(value) == words


@given(st.data())
def test_profile_values_round_trip(data: st.DataObject) -> None:
    """Values a simulator sets encode to registers that the poller decodes to the same values."""
    for name in DeviceProfile.available():
        profile = DeviceProfile.load(name)
        values: dict[str, float] = {}
        for spec in profile.registers:
            if spec.dtype is DType.BOOL:
                values[spec.key] = float(data.draw(st.booleans()))
            elif spec.dtype is DType.FLOAT32:
                values[spec.key] = data.draw(
                    st.floats(width=32, allow_nan=False, allow_infinity=False)
                )
            else:
                raw = data.draw(st.integers(*_RANGES[spec.dtype]))
                values[spec.key] = raw * spec.scale + spec.offset
        decoded: dict[str, float] = {}
        for table, words in profile.encode(values).items():
            for block in profile.read_blocks():
                if block.table is table:
                    regs = [words[a] for a in range(block.start, block.start + block.count)]
                    decoded.update(profile.decode(table, block.start, regs))
        assert decoded.keys() == values.keys()
        for key, value in values.items():
            scale = abs(profile.register(key).scale)
            assert decoded[key] == pytest.approx(value, abs=scale * 1e-6, rel=1e-9)


_RANGES = {
    DType.INT16: (-(2**15), 2**15 - 1),
    DType.UINT16: (0, 2**16 - 1),
    DType.INT32: (-(2**31), 2**31 - 1),
    DType.UINT32: (0, 2**32 - 1),
}
