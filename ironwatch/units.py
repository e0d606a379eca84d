"""Units said in names: the suffix a feature name ends in is its unit, one table for every role.

`accel_rms_ms2` is m/s², `velocity_rms_mms` mm/s (ISO 10816/20816, 10–1000 Hz),
`temperature_c` °C. The gateway names Modbus registers with these suffixes, device profiles
check a register's declared unit against them, and the cloud refuses a feature whose name
says no unit. (`firmware_bridge` may not import this package; it keeps a copy that a test
holds equal to this table.)
"""

from __future__ import annotations

__all__ = [
    "DIMENSIONLESS_FEATURES",
    "DIMENSIONLESS_RANGES",
    "NON_SI_SUFFIXES",
    "SI_CONVERSIONS",
    "UNITS",
    "UNIT_SUFFIXES",
    "unit_of",
]

# The one table of units: symbol and the physically possible range of a value in that unit
# (None: unbounded on that side). A value outside its range is a broken sensor or a
# careless sender, refused at the wire so it never reaches a model.
_C_ABS_ZERO = -273.15
UNITS: dict[str, tuple[str, float | None, float | None]] = {
    "_ms2": ("m/s²", 0.0, None),  # RMS, peak, envelope and order magnitudes
    "_mms": ("mm/s", 0.0, None),  # velocity RMS (ISO 10816/20816)
    "_c_per_h": ("°C/h", None, None),  # a rate of change: either sign
    "_c": ("°C", _C_ABS_ZERO, 5000.0),
    "_hz": ("Hz", 0.0, None),
    "_rpm": ("rpm", 0.0, None),
    "_a": ("A", 0.0, None),  # RMS current
    "_kw": ("kW", None, None),  # regenerating drives report negative power
    "_v": ("V", None, None),
    "_pct": ("%", -100.0, 1000.0),  # overload reads above 100 %, but not by orders of magnitude
    "_s": ("s", 0.0, None),
    "_h": ("h", 0.0, None),
    "_bar": ("bar", -1.01325, None),  # gauge pressure: vacuum is at most -1 atm
}
UNIT_SUFFIXES: dict[str, str] = {suffix: unit[0] for suffix, unit in UNITS.items()}
"""Name suffix -> unit. A feature name ends in one of these, or it is dimensionless."""

# Ranges of the dimensionless features (crest factor and kurtosis are ratios of magnitudes;
# excess kurtosis is at least -2).
DIMENSIONLESS_RANGES: dict[str, tuple[float | None, float | None]] = {
    "crest_factor": (0.0, None),
    "kurtosis": (-2.0, None),
    "skewness": (None, None),
}
DIMENSIONLESS_FEATURES = frozenset(DIMENSIONLESS_RANGES)

NON_SI_SUFFIXES: dict[str, str] = {
    "_g": "g (use m/s², _ms2)",
    "_f": "°F (use °C, _c)",
    "_ips": "in/s (use mm/s, _mms)",
    "_inps": "in/s (use mm/s, _mms)",
    "_k": "K (use °C, _c)",
    "_mils": "mils",
}
"""Units people send by mistake; naming them makes a rejection message useful."""

SI_CONVERSIONS: dict[str, tuple[str, float]] = {"_kpa": ("_bar", 0.01)}
"""Units a device may report that convert exactly to one of ours: suffix -> (ours, factor)."""


def unit_of(name: str) -> str | None:
    """The unit a name says by its suffix (the longest that matches), or None."""
    matches = [suffix for suffix in UNIT_SUFFIXES if name.endswith(suffix)]
    return UNIT_SUFFIXES[max(matches, key=len)] if matches else None
