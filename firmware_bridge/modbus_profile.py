"""Modbus device profiles: register maps with data types, word/byte order and scaling, from TOML.

A profile is data, not code (docs/modbus-profiles.md): the gateway's poller decodes register
words into SI values with it, and the simulator's Modbus server encodes values into words.
No I/O here beyond reading the profile file.
"""

from __future__ import annotations

import math
import re
import struct
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from firmware_bridge._errors import FirmwareBridgeError

__all__ = [
    "DType",
    "DeviceProfile",
    "Order",
    "ProfileError",
    "ReadBlock",
    "RegisterSpec",
    "Table",
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


_STRUCT = {
    DType.INT16: ">h",
    DType.UINT16: ">H",
    DType.INT32: ">i",
    DType.UINT32: ">I",
    DType.FLOAT32: ">f",
}
_INT_RANGE = {
    DType.INT16: (-(2**15), 2**15 - 1),
    DType.UINT16: (0, 2**16 - 1),
    DType.INT32: (-(2**31), 2**31 - 1),
    DType.UINT32: (0, 2**32 - 1),
}
# A key that ends in one of these suffixes must declare this unit (ARCHITECTURE: names carry units).
_SUFFIX_UNITS = {
    "_mms": "mm/s",
    "_ms2": "m/s²",
    "_c": "°C",
    "_rpm": "rpm",
    "_a": "A",
    "_v": "V",
    "_kw": "kW",
    "_hz": "Hz",
    "_pct": "%",
    "_kpa": "kPa",
    "_h": "h",
    "_kwh": "kWh",
}
Order = Literal["big", "little"]
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_ORDERS = ("big", "little")
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
        ordered = list(words[: self.count])
        if self.word_order == "little":
            ordered.reverse()
        raw_bytes = b"".join(int(w).to_bytes(2, self.byte_order) for w in ordered)
        (raw,) = struct.unpack(_STRUCT[self.dtype], raw_bytes)
        return float(raw) * self.scale + self.offset

    def encode(self, value: float) -> list[int] | list[bool]:
        """Registers (or the bit) holding `value`, lowest address first; raises if it won't fit."""
        if not math.isfinite(value) and self.dtype is not DType.FLOAT32:
            raise ProfileError(f"{self.key}: {value} cannot be stored as {self.dtype}")
        raw = (value - self.offset) / self.scale
        if self.dtype is DType.BOOL:
            return [bool(round(raw))]
        if self.dtype is DType.FLOAT32:
            try:
                raw_bytes = struct.pack(">f", raw)
            except OverflowError as err:
                raise ProfileError(f"{self.key}: {value} overflows float32") from err
        else:
            raw_int = round(raw)
            low, high = _INT_RANGE[self.dtype]
            if not low <= raw_int <= high:
                raise ProfileError(
                    f"{self.key}: {value} {self.unit} is raw {raw_int}, outside {self.dtype}"
                )
            raw_bytes = struct.pack(_STRUCT[self.dtype], raw_int)
        words = [
            int.from_bytes(raw_bytes[i : i + 2], self.byte_order)
            for i in range(0, len(raw_bytes), 2)
        ]
        if self.word_order == "little":
            words.reverse()
        return words


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: `count` registers (or bits) of `table` from `start`, covering `keys`."""

    table: Table
    start: int
    count: int
    keys: tuple[str, ...]


_REGISTER_FIELDS = {
    "key",
    "address",
    "table",
    "dtype",
    "unit",
    "scale",
    "offset",
    "word_order",
    "byte_order",
    "poll_interval_s",
    "description",
}
_DEVICE_FIELDS = {
    "name",
    "description",
    "manufacturer",
    "default_poll_interval_s",
    "default_word_order",
    "default_byte_order",
    "max_gap",
}


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


def _parse(doc: dict[str, Any], text: str, source: str) -> DeviceProfile:
    unknown = set(doc) - {"device", "register"}
    if unknown:
        raise ProfileError(f"{source}: unknown top-level table(s) {sorted(unknown)}")
    device = doc.get("device", {})
    if not isinstance(device, dict):
        raise ProfileError(f"{source}: [device] must be a table")
    bad = set(device) - _DEVICE_FIELDS
    if bad:
        raise ProfileError(f"{source}: [device] has unknown field(s) {sorted(bad)}")
    where = f"{source}: [device]"
    name = _get(device, "name", str, where, Path(source).stem)
    default_interval = _get(device, "default_poll_interval_s", float, where, 1.0)
    default_word = _get(device, "default_word_order", str, where, "big")
    default_byte = _get(device, "default_byte_order", str, where, "big")
    max_gap = _get(device, "max_gap", int, where, 0)
    if default_interval <= 0 or max_gap < 0:
        raise ProfileError(f"{where}: default_poll_interval_s must be > 0 and max_gap >= 0")
    entries = doc.get("register", [])
    if not isinstance(entries, list) or not entries:
        raise ProfileError(f"{source}: a profile needs at least one [[register]] table")
    lines = _register_lines(text)
    specs: list[RegisterSpec] = []
    for n, entry in enumerate(entries):
        line = f":{lines[n]}" if n < len(lines) else ""  # no line for inline-table arrays
        key_hint = f" ({entry.get('key')!r})" if isinstance(entry.get("key"), str) else ""
        where = f"{source}{line}: [[register]] #{n + 1}{key_hint}"
        specs.append(_parse_register(entry, where, default_interval, default_word, default_byte))
    try:
        return DeviceProfile(
            name=name,
            registers=tuple(specs),
            description=_get(device, "description", str, f"{source}: [device]", ""),
            manufacturer=_get(device, "manufacturer", str, f"{source}: [device]", ""),
            max_gap=max_gap,
        )
    except ProfileError as err:
        raise ProfileError(f"{source}: {err}") from err


_MISSING = object()


def _get(
    table: Mapping[str, Any], field: str, kind: type, where: str, default: Any = _MISSING
) -> Any:
    value = table.get(field, default)
    if value is _MISSING:
        raise ProfileError(f"{where}: missing field {field!r}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProfileError(
            f"{where}: field {field!r} must be {kind.__name__},"
            f" got {type(value).__name__} {value!r}"
        )
    return value


def _choice(
    entry: Mapping[str, Any],
    field: str,
    options: Sequence[str],
    where: str,
    default: Any = _MISSING,
) -> str:
    value = _get(entry, field, str, where, default)
    if value not in options:
        raise ProfileError(f"{where}: field {field!r} is {value!r}, must be one of {list(options)}")
    return str(value)


def _parse_register(
    entry: Any, where: str, default_interval: float, default_word: str, default_byte: str
) -> RegisterSpec:
    if not isinstance(entry, dict):
        raise ProfileError(f"{where}: must be a table")
    unknown = set(entry) - _REGISTER_FIELDS
    if unknown:
        raise ProfileError(f"{where}: unknown field(s) {sorted(unknown)}")
    key = _get(entry, "key", str, where)
    if not _KEY_RE.match(key):
        raise ProfileError(f"{where}: key {key!r} must be snake_case (a-z, 0-9, _)")
    address = _get(entry, "address", int, where)
    if not 0 <= address <= 0xFFFF:
        raise ProfileError(f"{where}: address {address} is outside 0..65535")
    table = Table(_choice(entry, "table", [t.value for t in Table], where))
    default_dtype = "bool" if table.is_bits else _MISSING
    dtype = DType(_choice(entry, "dtype", [d.value for d in DType], where, default_dtype))
    if table.is_bits != (dtype is DType.BOOL):
        raise ProfileError(f"{where}: dtype {dtype} does not fit the {table} table")
    if address + dtype.words - 1 > 0xFFFF:
        raise ProfileError(f"{where}: {dtype} at {address} runs past address 65535")
    unit = _get(entry, "unit", str, where)
    for suffix, expected in _SUFFIX_UNITS.items():
        if key.endswith(suffix) and unit != expected:
            raise ProfileError(f"{where}: key {key!r} says {expected!r} but unit is {unit!r}")
    scale = _get(entry, "scale", float, where, 1.0)
    offset = _get(entry, "offset", float, where, 0.0)
    if not (math.isfinite(scale) and scale != 0 and math.isfinite(offset)):
        raise ProfileError(f"{where}: scale must be finite and non-zero, offset finite")
    interval = _get(entry, "poll_interval_s", float, where, default_interval)
    if not (math.isfinite(interval) and interval > 0):
        raise ProfileError(f"{where}: poll_interval_s must be > 0")
    return RegisterSpec(
        key=key,
        address=address,
        table=table,
        dtype=dtype,
        unit=unit,
        scale=scale,
        offset=offset,
        word_order=cast(Order, _choice(entry, "word_order", _ORDERS, where, default_word)),
        byte_order=cast(Order, _choice(entry, "byte_order", _ORDERS, where, default_byte)),
        poll_interval_s=interval,
        description=_get(entry, "description", str, where, ""),
    )
