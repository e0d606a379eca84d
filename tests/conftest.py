"""Shared fixtures: real local servers on free loopback ports, stopped by PID afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from ironwatch_app.local_servers import Mosquitto, PtyPair

# These machines are shared and noisy: a slow example is not a failure. Property tests
# check behaviour, benchmarks under bench/ measure speed.
settings.register_profile(
    "ironwatch", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("ironwatch")


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A fresh anonymous Mosquitto broker on 127.0.0.1 for one test."""
    broker = Mosquitto()
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    """A socat pseudo-terminal pair: write on `.a`, read on `.b` (and back)."""
    pair = PtyPair()
    pair.start()
    try:
        yield pair
    finally:
        pair.stop()
