"""Absolute protection rules beside the learned detector: ISO vibration zones, temperature.

The detector learns what is normal for each machine, and engineers' verdicts teach it
more; neither may ever silence a machine that is plainly failing. These rules need no
model and no baseline: ISO 10816/20816 zone C is a warning and zone D critical
(`excessive_vibration`), and a bearing temperature at or over the asset's limit is an
alarm (`overheating`). Each raises its own alert whatever the detector or any verdict
says; a false-alarm verdict on such an alert resolves it, and the next round raises it
again while the condition lasts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cloud.domain.vocabulary import IsoZone, Severity
from models.diagnosis import ISO_10816_3_BOUNDARIES_MMS, iso_zone

__all__ = [
    "DEFAULT_TEMPERATURE_LIMIT_C",
    "PROTECTION_MODES",
    "PointReadings",
    "ProtectionFinding",
    "protection_findings",
]

VIBRATION_MODE = "excessive_vibration"
TEMPERATURE_MODE = "overheating"
PROTECTION_MODES = (VIBRATION_MODE, TEMPERATURE_MODE)
# Rolling-bearing housings run at 40–70 °C; 85 °C is a common alarm setting, and grease
# life halves about every 15 K above 70 °C.
DEFAULT_TEMPERATURE_LIMIT_C = 85.0
# One window over the line is not a zone change: the median of the last few readings is.
CONFIRM_READINGS = 3
_ZONE_SEVERITY: dict[str, Severity] = {"C": "warning", "D": "critical"}
_ZONES: dict[str, IsoZone] = {"A": "A", "B": "B", "C": "C", "D": "D"}


@dataclass(frozen=True)
class ProtectionFinding:
    """A rule that fired for one asset: the alert to raise, with its evidence."""

    failure_mode: str
    severity: Severity
    point: str
    value: float
    limit: float
    iso_zone: IsoZone | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class PointReadings:
    """The last few velocity and temperature readings of one point, from every row read.

    Kept by the pipeline from all new rows, commissioning ones included, so the rules work
    from a machine's first window and whether or not its models can score it.
    """

    point: str
    velocity_mms: list[float] = field(default_factory=list)
    temperature_c: list[float] = field(default_factory=list)

    def add(self, velocity_mms: Sequence[float], temperature_c: Sequence[float]) -> None:
        self.velocity_mms = _tail([*self.velocity_mms, *velocity_mms])
        self.temperature_c = _tail([*self.temperature_c, *temperature_c])

    @property
    def velocity(self) -> float:
        """Median of the last few readings: one window over a boundary is no zone change."""
        return float(np.median(self.velocity_mms)) if self.velocity_mms else math.nan

    @property
    def temperature(self) -> float:
        return float(np.median(self.temperature_c)) if self.temperature_c else math.nan


def _tail(values: list[float]) -> list[float]:
    # Walk back from the newest: a few steps, however many rows a round brought.
    out: list[float] = []
    for v in reversed(values):
        if math.isfinite(v):
            out.append(v)
            if len(out) == CONFIRM_READINGS:
                break
    out.reverse()
    return out


def protection_findings(
    readings: Sequence[PointReadings],
    *,
    iso_group: int,
    foundation: str,
    temperature_limit_c: float,
) -> list[ProtectionFinding]:
    """The protection alerts one asset's points call for now (worst point per rule)."""
    found: list[ProtectionFinding] = []
    boundaries = ISO_10816_3_BOUNDARIES_MMS.get((iso_group, foundation))
    velocities = [(r.point, r.velocity) for r in readings]
    velocities = [(p, x) for p, x in velocities if math.isfinite(x)]
    if boundaries is not None and velocities:
        point, velocity = max(velocities, key=lambda pv: pv[1])
        zone = _ZONES.get(str(iso_zone(velocity, iso_group, foundation)))  # type: ignore[arg-type]
        if zone is not None and zone in _ZONE_SEVERITY:
            limit = boundaries[1] if zone == "C" else boundaries[2]
            found.append(ProtectionFinding(
                failure_mode=VIBRATION_MODE, severity=_ZONE_SEVERITY[zone], point=point,
                value=velocity, limit=limit, iso_zone=zone,
                evidence=_evidence("iso_zone", point, "velocity_rms_mms", velocity, limit,
                                   iso_zone=zone, iso_group=iso_group, foundation=foundation),
            ))
    temperatures = [(r.point, r.temperature) for r in readings]
    temperatures = [(p, t) for p, t in temperatures if math.isfinite(t)]
    if temperatures:
        point, temperature = max(temperatures, key=lambda pt: pt[1])
        if temperature >= temperature_limit_c:
            found.append(ProtectionFinding(
                failure_mode=TEMPERATURE_MODE, severity="alarm", point=point,
                value=temperature, limit=temperature_limit_c,
                evidence=_evidence("temperature_limit", point, "temperature_c", temperature,
                                   temperature_limit_c),
            ))
    return found


def _evidence(
    rule: str, point: str, feature: str, value: float, limit: float, **extra: Any
) -> dict[str, Any]:
    return {
        "rule": rule,
        "point": point,
        "feature": feature,
        "value": round(value, 4),
        "limit": limit,
        "note": "absolute protection rule: raised whatever the anomaly model or verdicts say",
        **extra,
    }


def temperature_limit(limits: Mapping[str, float], default: float, asset_id: str) -> float:
    """The asset's own limit if configured, else the fleet default."""
    return float(limits.get(asset_id, default))
