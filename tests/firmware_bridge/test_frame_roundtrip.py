"""Property tests: every frame type survives encode -> decode, however the stream is split."""

from __future__ import annotations

import pytest
from fb_strategies import (
    acks,
    error_reports,
    frames,
    heartbeats,
    hellos,
    nacks,
    sample_blocks,
    scalars,
)
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.protocol import Frame, FrameDecoder, decode_frame, encode


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
