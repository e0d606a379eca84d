"""Modbus device profiles: register maps with data types, word/byte order and scaling, from TOML.

A profile is data, not code (docs/modbus-profiles.md): the gateway's poller decodes register
words into SI values with it, and the simulator's Modbus server encodes values into words.
No I/O here beyond reading the profile file.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pymodbus.client.mixin import ModbusClientMixin

from firmware_bridge._errors import FirmwareBridgeError

__all__ = [
    "UNIT_SUFFIXES",
    "DType",
    "DeviceProfile",
    "Order",
    "ProfileError",
    "ReadBlock",
    "RegisterSpec",
    "Table",
    "unit_of",
]


class ProfileError(FirmwareBridgeError, ValueError):
    """A profile file is broken, or values do not fit the profile's registers."""


class Table(StrEnum):
    """The four Modbus data tables."""

    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bits(self) -> bool:
        """Coils and discrete inputs hold single bits, not 16-bit words."""
        return self in (Table.COIL, Table.DISCRETE)


class DType(StrEnum):
    """How a value is stored: `bool` is for coils/discrete inputs, the rest for registers."""

    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"

    @property
    def words(self) -> int:
        """Registers (or bits, for bool) the value occupies."""
        return 2 if self in (DType.INT32, DType.UINT32, DType.FLOAT32) else 1


# Register conversion is pymodbus's own; the profile adds byte order, scale and offset.
_CONVERT = ModbusClientMixin
_DATATYPE = {
    DType.INT16: ModbusClientMixin.DATATYPE.INT16,
    DType.UINT16: ModbusClientMixin.DATATYPE.UINT16,
    DType.INT32: ModbusClientMixin.DATATYPE.INT32,
    DType.UINT32: ModbusClientMixin.DATATYPE.UINT32,
    DType.FLOAT32: ModbusClientMixin.DATATYPE.FLOAT32,
}

_INT_RANGE = {
    DType.INT16: (-(2**15), 2**15 - 1),
    DType.UINT16: (0, 2**16 - 1),
    DType.INT32: (-(2**31), 2**31 - 1),
    DType.UINT32: (0, 2**32 - 1),
}
# A key that ends in one of these suffixes must declare this unit (names carry units).
# The same table as the contract's `ironwatch.units.UNIT_SUFFIXES` (this package may not
# import it); tests/firmware_bridge/test_modbus_profile.py holds the two equal.
UNIT_SUFFIXES: dict[str, str] = {
    "_ms2": "m/s²",
    "_mms": "mm/s",
    "_c_per_h": "°C/h",
    "_c": "°C",
    "_hz": "Hz",
    "_rpm": "rpm",
    "_a": "A",
    "_kw": "kW",
    "_v": "V",
    "_pct": "%",
    "_s": "s",
    "_h": "h",
    "_bar": "bar",
}


def unit_of(key: str) -> str | None:
    """The unit a key says by its suffix (the longest that matches), or None."""
    matches = [suffix for suffix in UNIT_SUFFIXES if key.endswith(suffix)]
    return UNIT_SUFFIXES[max(matches, key=len)] if matches else None


Order = Literal["big", "little"]
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Modbus PDU limits per read request (function codes 3/4 and 1/2).
MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One value in a device's register map: physical value = raw x scale + offset, in `unit`."""

    key: str
    address: int
    table: Table
    dtype: DType
    unit: str
    scale: float = 1.0
    offset: float = 0.0
    word_order: Order = "big"
    byte_order: Order = "big"
    poll_interval_s: float = 1.0
    description: str = ""

    @property
    def count(self) -> int:
        """Registers (or bits) this value spans."""
        return self.dtype.words

    def decode(self, words: Sequence[int | bool]) -> float:
        """Physical value from this value's registers (or its bit), lowest address first."""
        if self.dtype is DType.BOOL:
            return float(bool(words[0])) * self.scale + self.offset
        registers = [int(w) for w in words[: self.count]]
        if self.byte_order == "little":
            registers = [_swap_bytes(w) for w in registers]
        raw = _CONVERT.convert_from_registers(
            registers, _DATATYPE[self.dtype], word_order=self.word_order
        )
        return float(cast(float, raw)) * self.scale + self.offset

    def encode(self, value: float) -> list[int] | list[bool]:
        """Registers (or the bit) holding `value`, lowest address first; raises if it won't fit."""
        if not math.isfinite(value) and self.dtype is not DType.FLOAT32:
            raise ProfileError(f"{self.key}: {value} cannot be stored as {self.dtype}")
        raw = (value - self.offset) / self.scale
        if self.dtype is DType.BOOL:
            return [bool(round(raw))]
        number: float | int
        if self.dtype is DType.FLOAT32:
            number = raw
        else:
            number = round(raw)
            low, high = _INT_RANGE[self.dtype]
            if not low <= number <= high:
                raise ProfileError(
                    f"{self.key}: {value} {self.unit} is raw {number}, outside {self.dtype}"
                )
        try:
            words = _CONVERT.convert_to_registers(
                number, _DATATYPE[self.dtype], word_order=self.word_order
            )
        except OverflowError as err:
            raise ProfileError(f"{self.key}: {value} overflows float32") from err
        if self.byte_order == "little":
            words = [_swap_bytes(w) for w in words]
        return words


def _swap_bytes(word: int) -> int:
    """A register with its two bytes swapped: pymodbus converts big-endian words only."""
    return ((word & 0xFF) << 8) | (word >> 8)


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: `count` registers (or bits) of `table` from `start`, covering `keys`."""

    table: Table
    start: int
    count: int
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """A device's register map. `load` reads TOML; `decode`/`encode` convert words <-> values."""

    name: str
    registers: tuple[RegisterSpec, ...]
    description: str = ""
    manufacturer: str = ""
    max_gap: int = 0
    """Unmapped registers a read may span to join two blocks; 0 reads only contiguous runs."""

    def __post_init__(self) -> None:
        _check_overlaps(self.registers)

    @property
    def keys(self) -> tuple[str, ...]:
        """Value keys in file order."""
        return tuple(r.key for r in self.registers)

    def register(self, key: str) -> RegisterSpec:
        """The spec for `key`; raises ProfileError if the profile has no such value."""
        for spec in self.registers:
            if spec.key == key:
                return spec
        raise ProfileError(f"profile {self.name!r} has no value {key!r}")

    @classmethod
    def load(cls, name_or_path: str | Path) -> DeviceProfile:
        """A shipped profile by name (e.g. "motor_drive") or a TOML file by path."""
        path = Path(name_or_path)
        if path.suffix == ".toml" or path.exists():
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as err:
                raise ProfileError(f"cannot read profile {path}: {err}") from err
            return cls.from_toml(text, source=str(path))
        shipped = resources.files("firmware_bridge") / "profiles" / f"{name_or_path}.toml"
        if not shipped.is_file():
            raise ProfileError(
                f"no shipped profile {str(name_or_path)!r}; available: {', '.join(cls.available())}"
            )
        return cls.from_toml(shipped.read_text(encoding="utf-8"), source=f"{name_or_path}.toml")

    @staticmethod
    def available() -> list[str]:
        """Names of the profiles shipped in firmware_bridge/profiles."""
        folder = resources.files("firmware_bridge") / "profiles"
        return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<profile>") -> DeviceProfile:
        """Parse profile TOML; errors name the file, the line and the field."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ProfileError(f"{source}: not valid TOML: {err}") from err
        return _parse(doc, text, source)

    def read_blocks(self, keys: Sequence[str] | None = None) -> list[ReadBlock]:
        """Group the registers of `keys` (default all) into as few read requests as allowed."""
        wanted = self.registers if keys is None else [self.register(k) for k in keys]
        blocks: list[ReadBlock] = []
        for table in Table:
            specs = sorted((s for s in wanted if s.table is table), key=lambda s: s.address)
            limit = MAX_BITS_PER_READ if table.is_bits else MAX_REGISTERS_PER_READ
            run: list[RegisterSpec] = []
            for spec in specs:
                if run:
                    start = run[0].address
                    end = max(s.address + s.count for s in run)
                    joins = spec.address - end <= self.max_gap
                    fits = spec.address + spec.count - start <= limit
                    if not (joins and fits):
                        blocks.append(_block(table, run))
                        run = []
                run.append(spec)
            if run:
                blocks.append(_block(table, run))
        return blocks

    def decode(
        self, table: Table | str, start_address: int, registers: Sequence[int | bool]
    ) -> dict[str, float]:
        """Values of every key of `table` lying wholly inside the words read from start_address."""
        tbl = Table(table)
        end = start_address + len(registers)
        out: dict[str, float] = {}
        for spec in self.registers:
            if (
                spec.table is tbl
                and start_address <= spec.address
                and spec.address + spec.count <= end
            ):
                i = spec.address - start_address
                out[spec.key] = spec.decode(registers[i : i + spec.count])
        return out

    def encode(self, values: Mapping[str, float]) -> dict[Table, dict[int, int | bool]]:
        """Register contents (per table, per address) that make a device report `values`."""
        out: dict[Table, dict[int, int | bool]] = {}
        for key, value in values.items():
            spec = self.register(key)
            words = spec.encode(value)
            table = out.setdefault(spec.table, {})
            for i, word in enumerate(words):
                table[spec.address + i] = word
        return out


def _block(table: Table, run: list[RegisterSpec]) -> ReadBlock:
    start = run[0].address
    end = max(s.address + s.count for s in run)
    return ReadBlock(table, start, end - start, tuple(s.key for s in run))


def _check_overlaps(registers: Sequence[RegisterSpec]) -> None:
    seen_keys: set[str] = set()
    used: dict[tuple[Table, int], str] = {}
    for spec in registers:
        if spec.key in seen_keys:
            raise ProfileError(f"key {spec.key!r} appears twice")
        seen_keys.add(spec.key)
        for a in range(spec.address, spec.address + spec.count):
            other = used.get((spec.table, a))
            if other is not None:
                raise ProfileError(f"{spec.key!r} overlaps {other!r} at {spec.table} address {a}")
            used[(spec.table, a)] = spec.key


def _register_lines(text: str) -> list[int]:
    """1-based line numbers of each [[register]] header, to point errors at the file."""
    return [
        i
        for i, line in enumerate(text.splitlines(), start=1)
        if re.match(r"^\s*\[\[\s*register\s*\]\]", line)
    ]


class _Entry(BaseModel):
    # strict: "10" is not an address and true is not a number; ints are taken as floats.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Device(_Entry):
    """The [device] table."""

    name: str | None = None
    description: str = ""
    manufacturer: str = ""
    default_poll_interval_s: float = 1.0
    default_word_order: Order = "big"
    default_byte_order: Order = "big"
    max_gap: int = 0

    @model_validator(mode="after")
    def _positive(self) -> _Device:
        if not (math.isfinite(self.default_poll_interval_s) and self.default_poll_interval_s > 0
                and self.max_gap >= 0):
            raise ValueError("default_poll_interval_s must be > 0 and max_gap >= 0")
        return self


class _Register(_Entry):
    """One [[register]] table; word/byte order and interval default to the device's."""

    key: str
    address: int
    table: Literal["holding", "input", "coil", "discrete"]
    dtype: Literal["bool", "int16", "uint16", "int32", "uint32", "float32"] | None = None
    unit: str
    scale: float = 1.0
    offset: float = 0.0
    word_order: Order | None = None
    byte_order: Order | None = None
    poll_interval_s: float | None = None
    description: str = ""

    @field_validator("key")
    @classmethod
    def _snake_case(cls, key: str) -> str:
        if not _KEY_RE.match(key):
            raise ValueError(f"key {key!r} must be snake_case (a-z, 0-9, _)")
        return key

    @field_validator("address")
    @classmethod
    def _in_range(cls, address: int) -> int:
        if not 0 <= address <= 0xFFFF:
            raise ValueError(f"address {address} is outside 0..65535")
        return address

    @model_validator(mode="after")
    def _consistent(self) -> _Register:
        table = Table(self.table)
        if self.dtype is None and not table.is_bits:
            raise ValueError("missing field 'dtype'")
        dtype = DType(self.dtype or "bool")
        if table.is_bits != (dtype is DType.BOOL):
            raise ValueError(f"dtype {dtype} does not fit the {table} table")
        if self.address + dtype.words - 1 > 0xFFFF:
            raise ValueError(f"{dtype} at {self.address} runs past address 65535")
        expected = unit_of(self.key)
        if expected is not None and self.unit != expected:
            raise ValueError(f"key {self.key!r} says {expected!r} but unit is {self.unit!r}")
        if not (math.isfinite(self.scale) and self.scale != 0 and math.isfinite(self.offset)):
            raise ValueError("scale must be finite and non-zero, offset finite")
        if self.poll_interval_s is not None and not (
            math.isfinite(self.poll_interval_s) and self.poll_interval_s > 0
        ):
            raise ValueError("poll_interval_s must be > 0")
        return self

    def spec(self, device: _Device) -> RegisterSpec:
        return RegisterSpec(
            key=self.key,
            address=self.address,
            table=Table(self.table),
            dtype=DType(self.dtype or "bool"),
            unit=self.unit,
            scale=self.scale,
            offset=self.offset,
            word_order=self.word_order or device.default_word_order,
            byte_order=self.byte_order or device.default_byte_order,
            poll_interval_s=self.poll_interval_s or device.default_poll_interval_s,
            description=self.description,
        )


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: dict[str, Any] = {}
    registers: list[Any] = Field(default=[], alias="register")  # BaseModel has .register


_KINDS = {"int": "int", "float": "float", "string": "str", "bool": "bool", "dict": "table",
          "model": "table", "list": "array"}


def _describe(err: ValidationError) -> str:
    """A pydantic error as the one line a profile author needs."""
    errors = err.errors()
    extra = [str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden"]
    if extra:
        return f"unknown field(s) {sorted(extra)}"
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"])
    kind = first["type"]
    value = first.get("input")
    if kind == "missing":
        return f"missing field {field!r}"
    if kind == "literal_error":
        return f"field {field!r} is {value!r}, must be one of {first['ctx']['expected']}"
    stem = kind.split("_")[0]
    if kind.endswith(("_type", "_parsing")) and stem in _KINDS:
        return f"field {field!r} must be {_KINDS[stem]}, got {type(value).__name__} {value!r}"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"field {field!r}: {message}" if field and first["type"] != "value_error" else message


def _parse(doc: dict[str, Any], text: str, source: str) -> DeviceProfile:
    try:
        top = _File.model_validate(doc)
    except ValidationError as err:
        extra = sorted(str(e["loc"][0]) for e in err.errors() if e["type"] == "extra_forbidden")
        if extra:
            raise ProfileError(f"{source}: unknown top-level table(s) {extra}") from err
        raise ProfileError(f"{source}: {_describe(err)}") from err
    try:
        device = _Device.model_validate(top.device)
    except ValidationError as err:
        raise ProfileError(f"{source}: [device]: {_describe(err)}") from err
    if not top.registers:
        raise ProfileError(f"{source}: a profile needs at least one [[register]] table")
    lines = _register_lines(text)
    specs: list[RegisterSpec] = []
    for n, entry in enumerate(top.registers):
        line = f":{lines[n]}" if n < len(lines) else ""  # no line for inline-table arrays
        key = entry.get("key") if isinstance(entry, dict) else None
        key_hint = f" ({key!r})" if isinstance(key, str) else ""
        where = f"{source}{line}: [[register]] #{n + 1}{key_hint}"
        if not isinstance(entry, dict):
            raise ProfileError(f"{where}: must be a table")
        try:
            specs.append(_Register.model_validate(entry).spec(device))
        except ValidationError as err:
            raise ProfileError(f"{where}: {_describe(err)}") from err
    try:
        return DeviceProfile(
            name=device.name if device.name is not None else Path(source).stem,
            registers=tuple(specs),
            description=device.description,
            manufacturer=device.manufacturer,
            max_gap=device.max_gap,
        )
    except ProfileError as err:
        raise ProfileError(f"{source}: {err}") from err
