"""Fixtures for simulator tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ironwatch.services import PtyPair, ServiceError


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    """The shared socat pty pair, started again if socat's links were not there yet.

    `PtyPair.start` checks for the links once, right after socat prints the pty names; on a
    busy machine the second link is sometimes a moment late, so a start is retried.
    """
    for attempt in range(5):
        pair = PtyPair()
        try:
            pair.start()
            break
        except ServiceError:
            if attempt == 4:
                raise
            time.sleep(0.05)
    try:
        yield pair
    finally:
        pair.stop()
