"""Streaming decoder: bytes in, frames out; never raises on bad input, counts and resyncs."""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge._codec import DELIMITER, MAX_ENCODED_SIZE, decode_frame
from firmware_bridge._errors import (
    CrcMismatchError,
    LocalProtocolError,
    RemoteProtocolError,
)
from firmware_bridge._frames import SEQ_MODULUS, Frame, Hello

__all__ = ["DecoderStats", "FrameDecoder"]

_HALF_SEQ = SEQ_MODULUS // 2


@dataclass(frozen=True, slots=True)
class DecoderStats:
    """Counters since the decoder was made; a snapshot, cheap to take.

    `resyncs` counts recoveries (a good frame after one or more bad chunks), `seq_gaps`
    the forward jumps in a device's sequence and `lost_frames` the frames those jumps skipped.
    """

    frames_ok: int = 0
    crc_errors: int = 0
    malformed: int = 0
    resyncs: int = 0
    seq_gaps: int = 0
    lost_frames: int = 0
    bytes_in: int = 0


class FrameDecoder:
    """Sans-IO decoder of the firmware protocol: `feed(bytes)` returns the frames completed.

    Contract: `feed` never raises on any input bytes. A chunk between delimiters that is
    not a valid frame (bad COBS, bad CRC, unknown version or type, bad fields, longer than
    `max_frame_size`) is dropped and counted, and decoding resumes at the next 0x00. The
    internal buffer never holds more than `max_frame_size` bytes. A decoder started in the
    middle of a stream counts the first partial chunk as one error.
    """

    def __init__(self, *, max_frame_size: int = MAX_ENCODED_SIZE) -> None:
        if max_frame_size < 1:
            raise LocalProtocolError("max_frame_size must be >= 1")
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        # True while skipping an over-long chunk: everything up to the next 0x00 is dropped.
        self._discarding = False
        self._out_of_sync = False
        self._last_seq: dict[int, int] = {}
        self.last_error: RemoteProtocolError | None = None
        """The most recent reason a chunk was dropped, for logs and diagnostics."""
        self._frames_ok = 0
        self._crc_errors = 0
        self._malformed = 0
        self._resyncs = 0
        self._seq_gaps = 0
        self._lost_frames = 0
        self._bytes_in = 0

    @property
    def stats(self) -> DecoderStats:
        """A snapshot of the counters."""
        return DecoderStats(
            self._frames_ok,
            self._crc_errors,
            self._malformed,
            self._resyncs,
            self._seq_gaps,
            self._lost_frames,
            self._bytes_in,
        )

    @property
    def buffered(self) -> int:
        """Bytes held of a frame not yet complete (always <= max_frame_size)."""
        return len(self._buf)

    def reset(self, *, sequences: bool = True) -> None:
        """Forget partial input (after a reopen, say) and, unless told not to, sequence history."""
        self._buf.clear()
        self._discarding = False
        if sequences:
            self._last_seq.clear()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Take bytes as they arrive (any split) and return the frames they complete, in order."""
        if isinstance(data, memoryview):
            data = data.tobytes()
        self._bytes_in += len(data)
        frames: list[Frame] = []
        idx = data.find(DELIMITER)
        if idx < 0:
            # The common partial read: append only, so byte-at-a-time feeding stays linear.
            if not self._discarding:
                if len(self._buf) + len(data) > self.max_frame_size:
                    self._overflow()  # checked before appending: the buffer never exceeds it
                else:
                    self._buf += data
            return frames
        if self._discarding:
            self._discarding = False
        elif len(self._buf) + idx > self.max_frame_size:
            self._overflow()
            self._discarding = False
        elif self._buf:
            self._buf += data[:idx]
            self._chunk(bytes(self._buf), frames)
        elif idx:
            self._chunk(bytes(data[:idx]), frames)
        self._buf.clear()
        chunks = data[idx + 1 :].split(DELIMITER)
        tail = chunks.pop()
        limit = self.max_frame_size
        for chunk in chunks:
            if not chunk:
                continue  # back-to-back delimiters are idle fill, not errors
            if len(chunk) > limit:
                self._overflow()
                self._discarding = False
                continue
            self._chunk(bytes(chunk), frames)
        if len(tail) > limit:
            self._overflow()
        else:
            self._buf += tail
        return frames

    def _overflow(self) -> None:
        # Too long to be a frame: drop what we hold and skip to the next delimiter.
        self._buf.clear()
        self._discarding = True
        self._malformed += 1
        self._out_of_sync = True

    def _chunk(self, chunk: bytes, frames: list[Frame]) -> None:
        try:
            frame = decode_frame(chunk)
        except CrcMismatchError as err:
            self._crc_errors += 1
            self._out_of_sync = True
            self.last_error = err
            return
        except RemoteProtocolError as err:
            self._malformed += 1
            self._out_of_sync = True
            self.last_error = err
            return
        if self._out_of_sync:
            self._resyncs += 1
            self._out_of_sync = False
        self._frames_ok += 1
        self._track(frame)
        frames.append(frame)

    def _track(self, frame: Frame) -> None:
        device, seq = frame.device_id, frame.seq
        last = self._last_seq.get(device)
        self._last_seq[device] = seq
        if last is None or isinstance(frame, Hello):
            return  # first sight, or the device announced a (re)start
        skipped = (seq - last - 1) % SEQ_MODULUS
        # A jump of half the space or more is a restart or a duplicate, not a loss.
        if 0 < skipped < _HALF_SEQ:
            self._seq_gaps += 1
            self._lost_frames += skipped
