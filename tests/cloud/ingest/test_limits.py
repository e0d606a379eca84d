"""Pure logic: the feature-name limit per asset; sorting a batch into new, repeats, conflicts."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud.ingest import FeatureNameLimit
from cloud.telemetry._store import StoredRow, sort_out
from ironwatch.wire import FeatureRecord

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def rec(seq: int, value: float = 1.0) -> FeatureRecord:
    return FeatureRecord(seq=seq, asset_id="a", point="p", ts=T0, window_s=1.0,
                         features={"velocity_rms_mms": value, "kurtosis": None})


def test_feature_names_are_limited_per_asset_and_known_names_always_pass() -> None:
    limit = FeatureNameLimit(3)
    assert limit.admit("a", ["x_mms", "y_mms"]) is None
    refused = limit.admit("a", ["z_mms", "w_mms"])  # 2 + 2 > 3: the whole record is refused
    assert refused is not None and "limit of 3" in refused
    assert limit.names("a") == {"x_mms", "y_mms"}
    assert limit.admit("a", ["x_mms", "z_mms"]) is None  # one new name still fits
    assert limit.admit("a", ["x_mms", "y_mms", "z_mms"]) is None  # known names always pass
    assert limit.admit("b", ["w_mms"]) is None  # another asset has its own budget


def test_sort_out_tells_new_repeats_and_conflicts_apart() -> None:
    stored = {1: StoredRow.of(rec(1)), 2: StoredRow.of(rec(2))}
    batch = [rec(1), rec(2, value=9.0), rec(3), rec(3), rec(4), rec(4, value=5.0)]
    to_write, result = sort_out(batch, stored)
    assert [r.seq for r in to_write] == [3, 4]
    assert (result.new, result.duplicates, result.conflicts) == (2, 2, (2, 4))


def test_content_is_compared_at_the_store_resolution() -> None:
    a = StoredRow.of(rec(1))
    b = StoredRow(a.asset_id, a.point, a.ts_ns + 400_000, a.window_s, a.stale, a.features)
    assert not a.same_as(b) and a.same_as(b, ts_resolution_ns=1_000_000)
    c = StoredRow(a.asset_id, a.point, a.ts_ns, a.window_s, a.stale, {"velocity_rms_mms": 1.1})
    assert not a.same_as(c)
