"""The scoring pipeline: commissioning, fleet-wide anomaly scoring, diagnosis, RUL, alerts."""

from cloud.pipeline._alert_rule import PersistenceRule
from cloud.pipeline._commands import GatewayCommands, SnapshotRequestError
from cloud.pipeline._model_suite import ModelSuite
from cloud.pipeline._pipeline import FeatureSource, RoundReport, ScoringPipeline
from cloud.pipeline._scoring_health import (
    AssetScoring,
    ScoringFailure,
    ScoringHealth,
    ScoringStatus,
)
from cloud.pipeline._state import PipelineState

__all__ = [
    "AssetScoring",
    "FeatureSource",
    "GatewayCommands",
    "ModelSuite",
    "PersistenceRule",
    "PipelineState",
    "RoundReport",
    "ScoringFailure",
    "ScoringHealth",
    "ScoringPipeline",
    "ScoringStatus",
    "SnapshotRequestError",
]
