"""How scoring is doing: one asset's last scored round and failure, the service's lag."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from cloud.api.schemas.common import PublicModel, UtcTime

__all__ = [
    "AssetScoringPublic",
    "FailingAssetPublic",
    "ScoringFailurePublic",
    "ScoringHealthPublic",
]


class ScoringFailurePublic(PublicModel):
    """Why an asset is not being scored: the model stage that raised, the error, since when."""

    stage: Literal[
        "physics", "fit", "anomaly", "verdict", "diagnosis", "rul", "evidence", "protection"
    ]
    error: str
    since: UtcTime
    last_at: UtcTime
    rounds: int


class AssetScoringPublic(PublicModel):
    """An asset's scoring: the last round it went through, and its failure if it is failing."""

    last_scored_at: UtcTime | None
    failure: ScoringFailurePublic | None


class FailingAssetPublic(ScoringFailurePublic):
    """A failing asset in the health summary."""

    asset_id: str


class ScoringHealthPublic(BaseModel):
    """The scoring service: degraded when an asset fails or no round completed in time."""

    model_config = ConfigDict(from_attributes=True)

    status: Literal["ok", "degraded"]
    reasons: list[str]
    last_round_at: UtcTime | None
    interval_s: float
    rounds_failed: int
    failures_total: int
    failing_assets: list[FailingAssetPublic]
