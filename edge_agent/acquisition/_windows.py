"""Sans-IO reassembly of SampleBlocks into fixed-length waveform windows.

A window is only made of contiguous samples: when a block's `first_sample_index` is not
the one expected (lost block, device restart) or its format changes, the partial window is
dropped and counted, and a new window starts with that block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_bridge import SampleBlock

__all__ = ["Window", "WindowAssembler"]


@dataclass(frozen=True, slots=True)
class Window:
    """`window_samples` contiguous samples per channel, in m/s², shape (channels, n)."""

    samples_ms2: np.ndarray
    sample_rate_hz: float
    first_sample_index: int

    @property
    def duration_s(self) -> float:
        return float(self.samples_ms2.shape[-1]) / self.sample_rate_hz


class WindowAssembler:
    """Feed SampleBlocks of one device; get complete windows back."""

    def __init__(self, window_samples: int) -> None:
        if window_samples < 4:
            raise ValueError("window_samples must be >= 4")
        self.window_samples = window_samples
        self.gaps = 0
        """Windows dropped because samples were missing or the format changed."""
        self._parts: list[np.ndarray] = []
        self._have = 0
        self._start = 0
        self._next_index: int | None = None
        self._format: tuple[float, int] | None = None

    def feed(self, block: SampleBlock) -> list[Window]:
        counts = np.frombuffer(block.samples, dtype="<i2").reshape(-1, block.channels)
        values = counts.T.astype(np.float64) * block.scale  # (channels, n)
        fmt = (float(block.sample_rate_hz), block.channels)
        if self._next_index is not None and (
            block.first_sample_index != self._next_index or fmt != self._format
        ):
            if self._have:
                self.gaps += 1
            self._reset()
        if self._have == 0:
            self._start = block.first_sample_index
        self._format = fmt
        self._next_index = block.first_sample_index + block.n_samples
        self._parts.append(values)
        self._have += values.shape[1]
        out: list[Window] = []
        while self._have >= self.window_samples:
            data = np.concatenate(self._parts, axis=1)
            window, rest = data[:, : self.window_samples], data[:, self.window_samples :]
            out.append(Window(window, fmt[0], self._start))
            self._start += self.window_samples
            self._parts = [rest] if rest.shape[1] else []
            self._have = rest.shape[1]
        return out

    def _reset(self) -> None:
        self._parts = []
        self._have = 0
