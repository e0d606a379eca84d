"""What the pipeline knows about an asset after a round, and what the models made of it.

Plain data passed from the scoring round (`KeyView`, `AssetView`) to the model suite,
and from the model suite (`Assessment`) to the alert evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cloud.domain.vocabulary import IsoZone, Severity

__all__ = ["Assessment", "AssetView", "KeyView", "RulHours"]

#: RUL in hours as (P10, P50, P90); P90 is None when it lies beyond the horizon.
RulHours = tuple[float, float, float | None]


@dataclass(frozen=True)
class KeyView:
    """The state of one (asset, point) after a round: persistence, latest values, trend."""

    key: str
    count: int
    raised: bool
    score: float
    latest: dict[str, float]
    z: dict[str, float]
    baseline_median: dict[str, float]
    hi_t_s: npt.NDArray[np.float64]
    hi: npt.NDArray[np.float64]
    onset_s: float | None = None
    #: Histories of the candidate RUL health indicators (aligned with the tail of
    #: `hi_t_s`, possibly shorter) and the same features' commissioning rows.
    trend: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    commissioning: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)

    @property
    def point(self) -> str:
        return self.key.partition("/")[2]


@dataclass(frozen=True)
class AssetView:
    """All points of one asset seen in a round."""

    asset_id: str
    keys: list[KeyView]

    def lead(self) -> KeyView:
        """The point that drives the asset's condition: raised first, then highest score."""
        return max(self.keys, key=lambda v: (v.raised, v.count, v.score))


@dataclass
class Assessment:
    """Health assessment and prognosis of one asset with a persistent anomaly."""

    asset_id: str
    lead: KeyView
    failure_mode: str
    score: float
    confidence: float | None = None
    iso_zone: IsoZone | None = None
    severity: Severity | None = None
    rul_hours: RulHours | None = None
    #: How the RUL was made: health indicator, its levels, horizon, open-endedness.
    rul_detail: dict[str, Any] = field(default_factory=dict)
    diagnosis: dict[str, Any] = field(default_factory=dict)
    peaks: list[dict[str, Any]] = field(default_factory=list)
    needs_snapshot: bool = False
    wants_newer_snapshot: bool = False
