"""Property test: whatever the block sizes and gaps, windows are exact contiguous slices."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.acquisition import WindowAssembler
from firmware_bridge import SampleBlock

SIGNAL = np.arange(200_000, dtype=np.int64) % 30_000 - 15_000  # counts, index-coded


def block(seq: int, start: int, n: int, channels: int) -> SampleBlock:
    counts = np.repeat(SIGNAL[start : start + n, None], channels, axis=1).astype("<i2")
    return SampleBlock(1, seq, start, 1000.0, channels, 1.0, counts.tobytes())


@given(
    window=st.integers(4, 300),
    channels=st.integers(1, 3),
    steps=st.lists(st.tuples(st.integers(1, 120), st.integers(0, 3)), min_size=1, max_size=60),
)
def test_windows_are_exact_contiguous_slices(
    window: int, channels: int, steps: list[tuple[int, int]]
) -> None:
    asm = WindowAssembler(window)
    index, windows = 0, []
    for seq, (n, skip) in enumerate(steps):
        gap = skip * 7 if skip == 3 else 0  # one step in four loses samples
        index += gap
        windows += asm.feed(block(seq, index, n, channels))
        index += n
    for w in windows:
        assert w.samples_ms2.shape == (channels, window)
        start = w.first_sample_index
        expected = SIGNAL[start : start + window].astype(np.float64)
        for c in range(channels):
            np.testing.assert_array_equal(w.samples_ms2[c], expected)
    starts = [w.first_sample_index for w in windows]
    assert starts == sorted(starts)
    assert all(b - a >= window for a, b in itertools.pairwise(starts))
    assert asm.gaps <= sum(1 for _, skip in steps if skip == 3)
