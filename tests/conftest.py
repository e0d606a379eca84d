"""Shared fixtures: real local servers on free loopback ports, stopped by PID afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from ironwatch_app.local_servers import Mosquitto, Postgres, PtyPair, free_port

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One real PostgreSQL 15 server for the whole run (skipped where it is not installed)."""
    if not Postgres.available():
        pytest.skip("PostgreSQL binaries not found (install Debian's postgresql)")
    server = Postgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> Iterator[str]:
    """A fresh, empty database on the shared server for one test, dropped afterwards."""
    from cloud.db import make_engine

    name = f"t{free_port()}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        admin = make_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
