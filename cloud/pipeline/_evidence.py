"""What an alert says about itself: the features that moved, peaks found, model and RUL.

Evidence is what an engineer reads before deciding whether to send someone, so it
names the measurement point, the persistence count and each moved feature with its
value, baseline median and robust z-score.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from cloud.pipeline._assessment import Assessment, KeyView

if TYPE_CHECKING:
    from cloud.pipeline._alert_rule import PersistenceRule
    from cloud.pipeline._model_suite import ModelSuite

__all__ = ["MOVED_Z", "build_evidence", "moved_features"]

# |z| above which a feature is reported as having moved; 3 robust sigmas is the usual line.
MOVED_Z = 3.0
TOP_FEATURES = 8


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def moved_features(view: KeyView, limit: int = TOP_FEATURES) -> list[dict[str, Any]]:
    """Features with |z| ≥ MOVED_Z, largest first, with value and baseline median."""
    moved = [(n, z) for n, z in view.z.items() if math.isfinite(z) and abs(z) >= MOVED_Z]
    moved.sort(key=lambda nz: -abs(nz[1]))
    return [
        {
            "feature": name,
            "value": _finite(view.latest.get(name, math.nan)),
            "baseline_median": _finite(view.baseline_median.get(name, math.nan)),
            "z": round(z, 2),
        }
        for name, z in moved[:limit]
    ]


def build_evidence(
    assessment: Assessment, rule: PersistenceRule, models: ModelSuite
) -> dict[str, Any]:
    """The JSON evidence stored on the alert (and shown in the API and dashboard)."""
    lead = assessment.lead
    rul = assessment.rul_hours
    return {
        "point": lead.point,
        "persistence": {"over_threshold": lead.count, "of_last": rule.n, "needed": rule.k},
        "anomaly_score": round(lead.score, 4),
        "moved_features": moved_features(lead),
        "iso_zone": assessment.iso_zone,
        "velocity_rms_mms": _finite(lead.latest.get("velocity_rms_mms", math.nan)),
        "diagnosis": assessment.diagnosis or {
            "source": None,
            "note": "waveform snapshot requested" if assessment.needs_snapshot
            else "no waveform diagnosis",
        },
        "spectral_peaks": assessment.peaks,
        "models": models.describe(),
        "rul_hours": None if rul is None else {
            "low": rul[0], "median": rul[1], "high": rul[2],
            "beyond_horizon": rul[2] is None, **assessment.rul_detail,
        },
    }
