"""Model blobs: round trip, provenance, refusal of foreign or corrupt data."""

from __future__ import annotations

import numpy as np
import pytest

from models.anomaly import FleetBaseline
from models.persistence import ModelFormatError, dump_model, load_model, read_metadata


def test_round_trip_keeps_scores_and_provenance() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    ids = np.repeat(["pump-1", "fan-2"], 100)
    model = FleetBaseline(false_alarms_per_year=2.0).fit(X, asset_ids=ids)
    blob = dump_model(
        model,
        asset_ids=["pump-1", "fan-2"],
        trained_from_utc="2026-01-01T00:00:00+00:00",
        trained_to_utc="2026-02-01T00:00:00+00:00",
    )
    meta = read_metadata(blob)
    assert meta.model_class == "models.anomaly.FleetBaseline"
    assert meta.params["false_alarms_per_year"] == 2.0
    assert meta.asset_ids == ("pump-1", "fan-2")
    assert meta.trained_to_utc == "2026-02-01T00:00:00+00:00"
    loaded, meta2 = load_model(blob)
    assert meta2 == meta
    np.testing.assert_array_equal(
        loaded.score_samples(X, asset_ids=ids), model.score_samples(X, asset_ids=ids)
    )


def test_foreign_and_corrupt_blobs_are_refused() -> None:
    with pytest.raises(ModelFormatError):
        read_metadata(b"not a model")
    blob = dump_model(FleetBaseline())
    header_end = blob.index(b"}") + 1
    with pytest.raises(ModelFormatError):
        read_metadata(blob[:20] + b"{" + blob[21:header_end])
    tampered = blob.replace(b'"format_version": 1', b'"format_version": 9')
    with pytest.raises(ModelFormatError):
        load_model(tampered)
