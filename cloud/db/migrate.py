"""Run the packaged Alembic migrations: the app upgrades its database to head at start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

from cloud.db.engine import make_engine

__all__ = ["alembic_config", "upgrade"]

_HERE = Path(__file__).resolve().parent
# Any constant works; it only has to be the same in every Ironwatch process.
_PG_MIGRATION_LOCK = 0x1A0_3A7C


def alembic_config(url: str | None = None) -> Config:
    """The Alembic config packaged in cloud/db, independent of the working directory."""
    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", str(_HERE / "migrations"))
    if url is not None:
        # ConfigParser interpolation would eat a '%' in a URL-encoded password.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade_on(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if connection.dialect.name == "postgresql":
        # Several workers start together at scale: one migrates, the others wait. The
        # migration commits before the lock is released, so the next worker sees it done.
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        try:
            command.upgrade(config, revision)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
            connection.commit()
    else:
        command.upgrade(config, revision)
        connection.commit()


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Migrate the database to `revision` (default head); idempotent."""
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.connect() as connection:
            _upgrade_on(connection, revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()
