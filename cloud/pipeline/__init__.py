"""The scoring pipeline: commissioning, fleet-wide anomaly scoring, diagnosis, RUL, alerts."""

from cloud.pipeline._models import ModelSuite
from cloud.pipeline._persistence import PersistenceRule
from cloud.pipeline._pipeline import FeatureSource, RoundReport, ScoringPipeline
from cloud.pipeline._snapshots import GatewayCommands, SnapshotRequestError
from cloud.pipeline._state import PipelineState

__all__ = [
    "FeatureSource",
    "GatewayCommands",
    "ModelSuite",
    "PersistenceRule",
    "PipelineState",
    "RoundReport",
    "ScoringPipeline",
    "SnapshotRequestError",
]
