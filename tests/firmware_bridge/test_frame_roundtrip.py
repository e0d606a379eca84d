"""Property tests: every frame type survives encode -> decode, however the stream is split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.protocol import (
    Ack,
    ErrorReport,
    Frame,
    FrameDecoder,
    Heartbeat,
    Hello,
    Nack,
    NackReason,
    Quantity,
    SampleBlock,
    ScalarReading,
    decode_frame,
    encode,
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


@pytest.mark.parametrize(
    "strategy",
    [hellos, sample_blocks(), scalars, heartbeats, acks, nacks, error_reports],
    ids=["Hello", "SampleBlock", "ScalarReading", "Heartbeat", "Ack", "Nack", "ErrorReport"],
)
def test_each_frame_type_round_trips(strategy: st.SearchStrategy[Frame]) -> None:
    @given(strategy)
    def check(frame: Frame) -> None:
        wire = encode(frame)
        assert wire.count(0) == 1
        assert decode_frame(wire[:-1]) == frame
        decoder = FrameDecoder()
        assert decoder.feed(wire) == [frame]
        assert decoder.stats.frames_ok == 1
        assert decoder.buffered == 0

    check()


@given(st.lists(frames, max_size=8), st.data())
def test_stream_of_frames_split_anywhere(batch: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(encode(f) for f in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder()
    out: list[Frame] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out += decoder.feed(stream[start:cut])
        start = cut
    assert out == batch
    stats = decoder.stats
    assert (stats.crc_errors, stats.malformed, stats.bytes_in) == (0, 0, len(stream))


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    decoder = FrameDecoder(max_frame_size=512)
    decoder.feed(data)
    assert decoder.buffered <= 512
