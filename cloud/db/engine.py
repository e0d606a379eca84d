"""Engines and sessions: one place that knows SQLite and PostgreSQL differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

__all__ = ["SessionFactory", "make_engine", "make_session_factory"]

SessionFactory = sessionmaker[Session]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    # Ingestion, scoring and API share the file: wait for a lock instead of failing at once.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for `url`; SQLite gets foreign keys, a busy timeout and its directory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    database = parsed.database
    in_memory = database in (None, "", ":memory:")
    connect_args = dict(kwargs.pop("connect_args", {}))
    # The API, the scorer and the webhook worker use sessions from different threads.
    connect_args.setdefault("check_same_thread", False)
    if in_memory:
        # One shared connection, or every session would see its own empty database.
        kwargs.setdefault("poolclass", StaticPool)
    else:
        assert database is not None
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    if not in_memory:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    return engine


def make_session_factory(engine: Engine) -> SessionFactory:
    """A session factory whose objects stay readable after commit (API responses use them)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
