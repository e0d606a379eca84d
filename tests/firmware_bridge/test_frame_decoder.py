"""Streaming decoder behaviour: resync after damage, bounded buffer, sequence accounting."""

from __future__ import annotations

import struct

from cobs import cobs

from firmware_bridge.protocol import (
    SEQ_MODULUS,
    CrcMismatchError,
    FrameDecoder,
    Heartbeat,
    Hello,
    SampleBlock,
    encode,
)


def hb(seq: int, device: int = 1) -> bytes:
    return encode(Heartbeat(device, seq, 0))


def test_garbage_before_a_frame_is_skipped_and_counted() -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(b"\x13\x37garbage" + b"\x00" + hb(0))
    assert frames == [Heartbeat(1, 0, 0)]
    stats = decoder.stats
    assert stats.malformed + stats.crc_errors == 1
    assert stats.resyncs == 1
    assert stats.frames_ok == 1


def test_bad_crc_counted_and_next_frame_decodes() -> None:
    decoder = FrameDecoder()
    raw = bytearray(cobs.decode(hb(0)[:-1]))
    raw[10] ^= 0x40  # one bit of the payload: valid COBS, wrong CRC
    frames = decoder.feed(cobs.encode(bytes(raw)) + b"\x00" + hb(1))
    assert frames == [Heartbeat(1, 1, 0)]
    assert decoder.stats.crc_errors == 1
    assert isinstance(decoder.last_error, CrcMismatchError)
    assert decoder.stats.resyncs == 1


def test_truncated_frame_is_dropped_at_the_next_delimiter() -> None:
    decoder = FrameDecoder()
    wire = hb(0)
    assert decoder.feed(wire[:7]) == []
    assert decoder.buffered == 7
    frames = decoder.feed(b"\x00" + hb(1))  # the device restarted its transmit mid-frame
    assert frames == [Heartbeat(1, 1, 0)]
    assert decoder.stats.frames_ok == 1
    assert decoder.stats.crc_errors + decoder.stats.malformed == 1


def test_idle_delimiters_are_not_errors() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00\x00" + hb(0) + b"\x00\x00\x00" + hb(1)) == [
        Heartbeat(1, 0, 0),
        Heartbeat(1, 1, 0),
    ]
    assert decoder.stats.malformed == decoder.stats.crc_errors == 0


def test_byte_at_a_time_feeding() -> None:
    decoder = FrameDecoder()
    block = SampleBlock(3, 0, 0, 25600.0, 3, 0.001, struct.pack("<3072h", *range(-1536, 1536)))
    out = []
    for byte in encode(block):
        out += decoder.feed(bytes((byte,)))
    assert out == [block]


def test_memoryview_and_bytearray_input() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(memoryview(hb(0))) == [Heartbeat(1, 0, 0)]
    assert decoder.feed(bytearray(hb(1))) == [Heartbeat(1, 1, 0)]


def test_buffer_bounded_without_delimiters_then_recovers() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    for _ in range(50):
        decoder.feed(b"\xaa" * 37)
        assert decoder.buffered <= 100
    assert decoder.stats.malformed == 1  # one over-long run, counted once
    assert decoder.feed(b"\xbb" * 10 + b"\x00" + hb(0)) == [Heartbeat(1, 0, 0)]
    assert decoder.stats.resyncs == 1


def test_oversized_chunk_inside_one_feed_is_dropped() -> None:
    decoder = FrameDecoder(max_frame_size=64)
    big = encode(SampleBlock(1, 0, 0, 1.0, 1, 1.0, bytes(200)))
    assert decoder.feed(hb(0) + big + hb(1) + b"\x01" * 65) == [
        Heartbeat(1, 0, 0),
        Heartbeat(1, 1, 0),
    ]
    assert decoder.stats.malformed == 2
    assert decoder.buffered == 0
    assert decoder.feed(b"\x00" + hb(2)) == [Heartbeat(1, 2, 0)]


def test_sequence_gaps_per_device() -> None:
    decoder = FrameDecoder()
    stream = hb(0) + hb(1) + hb(5) + hb(0, device=2) + hb(6) + hb(2, device=2)
    assert len(decoder.feed(stream)) == 6
    stats = decoder.stats
    assert stats.seq_gaps == 2
    assert stats.lost_frames == 3 + 1


def test_sequence_wraps_at_2_pow_32() -> None:
    decoder = FrameDecoder()
    decoder.feed(hb(SEQ_MODULUS - 2) + hb(SEQ_MODULUS - 1) + hb(0) + hb(2))
    assert decoder.stats.seq_gaps == 1
    assert decoder.stats.lost_frames == 1


def test_duplicates_and_backward_jumps_are_not_losses() -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(hb(10) + hb(10) + hb(3) + hb(4))
    assert len(frames) == 4  # duplicates are delivered; deduplication is the caller's choice
    assert decoder.stats.seq_gaps == 0


def test_hello_resets_sequence_tracking() -> None:
    decoder = FrameDecoder()
    hello = Hello(1, 1000, "1.0", "m", "s", 3, 25600.0)
    decoder.feed(hb(5) + encode(hello) + hb(1001))
    assert decoder.stats.seq_gaps == 0


def test_reset_forgets_partial_input_and_sequences() -> None:
    decoder = FrameDecoder()
    decoder.feed(hb(0) + hb(1)[:5])
    decoder.reset()
    assert decoder.buffered == 0
    assert decoder.feed(hb(9)) == [Heartbeat(1, 9, 0)]
    assert decoder.stats.seq_gaps == 0
    assert decoder.stats.crc_errors + decoder.stats.malformed == 0
