"""Domain fixtures: an in-memory SQLite session with a small fleet, and a real PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cloud.db import Base, SessionFactory, make_engine, make_session_factory
from cloud.domain import seed_fleet
from ironwatch_app.local_servers import free_port, stop_process, wait_for_port

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PG_BIN = Path("/usr/lib/postgresql/15/bin")

FLEET = {
    "gateways": [{"id": "gw-1", "name": "Hall A"}, {"id": "gw-2"}],
    "assets": [
        {
            "id": "pump-1",
            "gateway_id": "gw-1",
            "kind": "pump",
            "physics": {
                "speed_rpm": 1480.0,
                "iso_group": 2,
                "foundation": "rigid",
                "points": [
                    {
                        "id": "de_radial",
                        "bearing": {
                            "n_balls": 9,
                            "ball_diameter_mm": 7.94,
                            "pitch_diameter_mm": 39.04,
                            "contact_angle_deg": 0.0,
                        },
                    }
                ],
            },
            "customer_tier": "strategic",
        },
        {"id": "fan-1", "gateway_id": "gw-1", "kind": "fan", "customer_tier": "standard"},
        {"id": "motor-2", "gateway_id": "gw-2", "customer_tier": "key"},
    ],
}


def sqlite_factory() -> tuple[Engine, SessionFactory]:
    """An in-memory database with the test fleet.

    create_all rather than the migrations, for speed: test_persistence proves they agree.
    """
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_fleet(session, FLEET)
        session.commit()
    return engine, factory


@pytest.fixture
def session_factory() -> Iterator[SessionFactory]:
    engine, factory = sqlite_factory()
    yield factory
    engine.dispose()


@pytest.fixture
def session(session_factory: SessionFactory) -> Iterator[Session]:
    with session_factory() as s:
        yield s


class PostgresServer:
    """A throwaway PostgreSQL 15 cluster in a temp dir on a free port, stopped by PID."""

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="ironwatch-pg-"))
        self.proc: subprocess.Popen[bytes] | None = None
        # initdb and postgres refuse to run as root: drop to the `postgres` account then.
        self.user = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://ironwatch@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresServer:
        data = self.workdir / "data"
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "ironwatch",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )
        log = (self.workdir / "postgres.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.workdir}",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            user=self.user,
        )
        log.close()  # the child has its own copy of the descriptor
        wait_for_port(self.port, timeout_s=30)
        return self

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown (SIGTERM waits for clients to leave);
        # stop_process then makes sure it is gone, by PID.
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        stop_process(self.proc, timeout_s=5)
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if not (PG_BIN / "postgres").exists() or not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (install Debian's postgresql)")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the shared server for one test."""
    admin = make_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    name = f"t{free_port()}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
