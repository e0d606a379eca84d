"""From a persistent anomaly plus diagnosis, ISO zone and RUL to one alert severity.

Each step can only raise the severity: a persistent anomaly alone is an advisory
(engineers watch it), a diagnosed fault is at least a warning, ISO 20816 zone C/D is
at least a warning/alarm, and a RUL lower bound under a day is critical.
"""

from __future__ import annotations

from cloud.domain.vocabulary import SEVERITIES, IsoZone, Severity

__all__ = ["CRITICAL_RUL_LOW_H", "DIAGNOSED_MIN_CONFIDENCE", "decide_severity"]

DIAGNOSED_MIN_CONFIDENCE = 0.5
CRITICAL_RUL_LOW_H = 24.0
_ZONE_FLOOR: dict[str, Severity] = {"C": "warning", "D": "alarm"}


def _max(a: Severity, b: Severity) -> Severity:
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b


def decide_severity(
    *,
    diagnosed: bool,
    confidence: float | None,
    iso_zone: IsoZone | None,
    rul_low_h: float | None,
    model_severity: Severity | None = None,
) -> Severity:
    """The severity of a persistent anomaly on one asset (see the module docstring)."""
    severity: Severity = "advisory"
    if model_severity is not None:
        severity = _max(severity, model_severity)
    if diagnosed and (confidence is None or confidence >= DIAGNOSED_MIN_CONFIDENCE):
        severity = _max(severity, "warning")
    if iso_zone is not None and iso_zone in _ZONE_FLOOR:
        severity = _max(severity, _ZONE_FLOOR[iso_zone])
    if rul_low_h is not None and rul_low_h <= CRITICAL_RUL_LOW_H:
        severity = _max(severity, "critical")
    return severity
