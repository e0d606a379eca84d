"""Fuzz the streaming decoder with >=100,000 damaged inputs: no exceptions, bounded, resyncs."""

from __future__ import annotations

import random
import struct

from firmware_bridge.protocol import (
    Ack,
    ErrorReport,
    Frame,
    FrameDecoder,
    Heartbeat,
    Hello,
    Nack,
    Quantity,
    SampleBlock,
    ScalarReading,
    encode,
)

ROUNDS = 100_000
MAX_FRAME = 2048


def _corpus(rng: random.Random) -> list[bytes]:
    """Valid wire frames of every type and a few sizes, the seeds that get damaged."""
    frames: list[Frame] = [
        Hello(1, 0, "2.1.0", "IW-VIB3", "SN-00042", 3, 25600.0),
        Heartbeat(1, 5, 123_456),
        ScalarReading(1, 6, 99, Quantity.TEMPERATURE_C, 63.2),
        Ack(0, 1, 5),
        Nack(0, 2, 6, 1),
        ErrorReport(1, 7, 3, "accelerometer channel 2 open circuit"),
    ]
    for n in (1, 16, 64, 256):
        samples = struct.pack(f"<{3 * n}h", *(rng.randint(-32768, 32767) for _ in range(3 * n)))
        frames.append(SampleBlock(1, 8 + n, n * 1000, 25600.0, 3, 0.0048, samples))
    return [encode(f) for f in frames]


def _damage(rng: random.Random, wire: bytes) -> bytes:
    kind = rng.randrange(6)
    data = bytearray(wire)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation (the delimiter goes too)
        del data[rng.randrange(len(data)) :]
    elif kind == 2:  # garbage inserted somewhere, zeros included
        i = rng.randrange(len(data) + 1)
        data[i:i] = rng.randbytes(rng.randint(1, 40))
    elif kind == 3:  # pure noise, sometimes longer than any frame
        return rng.randbytes(
            rng.choice((rng.randint(1, 64), rng.randint(MAX_FRAME, 3 * MAX_FRAME)))
        )
    elif kind == 4:  # bytes dropped from the middle (UART overrun)
        i = rng.randrange(len(data))
        del data[i : i + rng.randint(1, 8)]
    else:  # two frames spliced without their delimiter
        data = data[:-1] + bytearray(wire[rng.randrange(len(wire)) :])
    return bytes(data)


def test_decoder_survives_damage_and_resyncs() -> None:
    rng = random.Random(20261123)
    corpus = _corpus(rng)
    decoder = FrameDecoder(max_frame_size=MAX_FRAME)
    for round_ in range(ROUNDS):
        damaged = _damage(rng, rng.choice(corpus))
        # Split the damaged bytes at a random point: feeds do not line up with frames.
        cut = rng.randrange(len(damaged) + 1)
        decoder.feed(damaged[:cut])
        assert decoder.buffered <= MAX_FRAME
        decoder.feed(damaged[cut:])
        assert decoder.buffered <= MAX_FRAME
        # A delimiter ends whatever the damage left behind; the clean frame must come out.
        out = decoder.feed(b"\x00" + encode(Heartbeat(9, round_ % 65536, 42)))
        assert out and out[-1] == Heartbeat(9, round_ % 65536, 42), f"lost sync in round {round_}"
        assert decoder.buffered == 0
    stats = decoder.stats
    assert stats.frames_ok >= ROUNDS
    assert stats.crc_errors > 1000
    assert stats.malformed > 1000
    assert stats.resyncs > 1000


def test_random_bytes_in_random_pieces() -> None:
    rng = random.Random(7)
    decoder = FrameDecoder(max_frame_size=512)
    for _ in range(2000):
        decoder.feed(rng.randbytes(rng.randint(0, 1500)))
        assert decoder.buffered <= 512
    assert decoder.feed(b"\x00" + encode(Ack(1, 1, 1))) == [Ack(1, 1, 1)]
