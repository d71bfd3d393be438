"""Bring a read model's database to the newest schema version (Alembic), at every start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"

# Any constant bigint: the key of the PostgreSQL advisory lock that serialises migrations.
MIGRATION_LOCK = 0x636976696367  # "civicg"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        _lock_out_other_replicas(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _lock_out_other_replicas(connection: Connection) -> None:
    """Replicas sharing one read model start together and each migrates it: one at a time.

    Without this both see no ``alembic_version`` and both create it; the loser fails to start.
    The lock is held until this migration transaction ends, so a waiting replica then finds
    the schema at head and its ``upgrade head`` does nothing.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    elif connection.dialect.name == "sqlite":
        # pysqlite opens no transaction before DDL, so Alembic's DDL would run unguarded:
        # take the write lock first (waiting up to the engine's busy timeout for it).
        connection.exec_driver_sql("BEGIN EXCLUSIVE")
