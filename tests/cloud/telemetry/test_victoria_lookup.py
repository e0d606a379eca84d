"""Which groups of a batch VictoriaMetricsStore looks up in one export (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cloud.telemetry._victoria import _CLUSTER_GAP_NS, _CLUSTER_MAX_NS, _clusters

S = 10**9


def test_a_live_batch_is_one_export_and_an_old_replay_another() -> None:
    live = [(1000 * S + i * S, 1010 * S + i * S) for i in range(5)]
    spans = [live[0], (10 * S, 20 * S), *live[1:]]
    assert _clusters(spans) == [[1], [0, 2, 3, 4, 5]]


@given(st.lists(st.tuples(st.integers(0, 3600), st.integers(0, 900)), max_size=30))
def test_every_group_once_and_each_export_span_bounded(spans_s: list[tuple[int, int]]) -> None:
    spans = [(lo * S, (lo + length) * S) for lo, length in spans_s]
    clusters = _clusters(spans)
    assert sorted(i for c in clusters for i in c) == list(range(len(spans)))
    for c in clusters:
        lo = min(spans[i][0] for i in c)
        hi = max(spans[i][1] for i in c)
        # A cluster is one group, or spans at most the cap, its members a minute apart.
        assert len(c) == 1 or hi - lo <= _CLUSTER_MAX_NS
        ordered = sorted(spans[i] for i in c)
        reach = ordered[0][1]
        for s_lo, s_hi in ordered[1:]:
            assert s_lo <= reach + _CLUSTER_GAP_NS
            reach = max(reach, s_hi)
