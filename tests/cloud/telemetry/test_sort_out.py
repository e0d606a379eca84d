"""sort_out: the batch without repeats skips the per-record comparison, with the same answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cloud.telemetry._store import StorableRecord, StoredRow, WriteResult, sort_out

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Rec:
    seq: int
    asset_id: str
    point: str
    ts: datetime
    window_s: float
    stale: bool
    features: dict[str, float | None]


def compared_one_by_one(
    records: list[Rec], existing: dict[int, StoredRow]
) -> tuple[list[StorableRecord], WriteResult]:
    """The rule written out: a repeat is compared with what is stored or came first."""
    seen = dict(existing)
    to_write: list[StorableRecord] = []
    duplicates, conflicts = 0, []
    for r in records:
        row = StoredRow.of(r)
        if r.seq not in seen:
            seen[r.seq] = row
            to_write.append(r)
        elif seen[r.seq].same_as(row):
            duplicates += 1
        else:
            conflicts.append(r.seq)
    return to_write, WriteResult(len(to_write), duplicates, tuple(conflicts))


recs = st.builds(Rec, seq=st.integers(0, 12), asset_id=st.sampled_from(["a", "b"]),
                 point=st.just("de"), ts=st.integers(0, 2).map(lambda s: T0 + timedelta(seconds=s)),
                 window_s=st.just(1.0), stale=st.booleans(),
                 features=st.fixed_dictionaries({"x_ms2": st.sampled_from([1.0, 2.0, None])}))


@given(records=st.lists(recs, max_size=12), stored=st.lists(recs, max_size=6))
def test_sort_out_answers_as_the_rule_says(records: list[Rec], stored: list[Rec]) -> None:
    existing = {r.seq: StoredRow.of(r) for r in stored}
    assert sort_out(records, existing) == compared_one_by_one(records, existing)
