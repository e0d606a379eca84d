"""Hypothesis strategies for every firmware frame type, shared by the codec tests."""

from __future__ import annotations

from hypothesis import strategies as st

from firmware_bridge.protocol import (
    Ack,
    ErrorReport,
    Frame,
    Heartbeat,
    Hello,
    Nack,
    NackReason,
    Quantity,
    SampleBlock,
    ScalarReading,
)

device_ids = st.integers(0, 0xFFFF)
seqs = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
positive = st.floats(min_value=0.0, exclude_min=True, allow_infinity=False, allow_nan=False)
# Hello strings are capped at 255 UTF-8 bytes; 60 code points never exceed 240.
short_text = st.text(max_size=60)


@st.composite
def sample_blocks(draw: st.DrawFn) -> SampleBlock:
    channels = draw(st.integers(1, 8))
    n = draw(st.integers(0, 64))
    samples = draw(st.binary(min_size=2 * channels * n, max_size=2 * channels * n))
    return SampleBlock(
        draw(device_ids), draw(seqs), draw(u64), draw(positive), channels, draw(positive), samples
    )


hellos = st.builds(
    Hello, device_ids, seqs, short_text, short_text, short_text, st.integers(0, 255), positive
)
scalars = st.builds(
    ScalarReading, device_ids, seqs, u64, st.sampled_from(Quantity), st.floats(allow_nan=False)
)
heartbeats = st.builds(Heartbeat, device_ids, seqs, u64)
acks = st.builds(Ack, device_ids, seqs, seqs)
nacks = st.builds(
    Nack, device_ids, seqs, seqs, st.one_of(st.sampled_from(NackReason), st.integers(6, 255))
)
error_reports = st.builds(ErrorReport, device_ids, seqs, st.integers(0, 0xFFFF), st.text())

frames: st.SearchStrategy[Frame] = st.one_of(
    hellos, sample_blocks(), scalars, heartbeats, acks, nacks, error_reports
)
