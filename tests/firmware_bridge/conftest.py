"""Fixtures for firmware_bridge tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ironwatch.services import PtyPair, ServiceError


class _PtyPair(PtyPair):
    """PtyPair whose start waits for socat's links instead of checking them once.

    `PtyPair.start` looks for the links right after socat prints the pty names, before
    socat has made the second link, so about one start in four fails on a busy machine.
    """

    def start(self, timeout_s: float = 5.0) -> PtyPair:
        socat = shutil.which("socat")
        if socat is None:
            raise ServiceError("socat not found: install Debian's socat package")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="ironwatch-pty-"))
        self.proc = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not (os.path.exists(self.a) and os.path.exists(self.b)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServiceError("socat did not create a pty pair")
            time.sleep(0.01)
        return self


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    """The shared `pty_pair` fixture, with a start that waits for the links (see _PtyPair)."""
    pair = _PtyPair()
    pair.start()
    try:
        yield pair
    finally:
        pair.stop()
