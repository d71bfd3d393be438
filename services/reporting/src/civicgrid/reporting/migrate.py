"""Bring a read model's database to the newest schema version (Alembic), at every start."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock's key for "migrating the read model" (any 64-bit number of our own).
POSTGRES_LOCK_KEY = 0x63697669636772  # "civicgr"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """Migrate to head, one process at a time: replicas that start together on a new database
    would otherwise each create its tables, and all but one fail ("already exists"). The one
    that waited then finds the version table at head and has nothing to do."""
    config = alembic_config()
    with _sqlite_file_lock(engine), engine.begin() as connection:
        _postgres_lock(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    # SQLite's Python driver runs DDL outside a transaction, so the database's own locking
    # does not make a migration atomic: a lock file beside the database does.
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _postgres_lock(connection: Connection) -> None:
    # Held until this transaction ends; the next migrator's statements then see its tables.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK_KEY})
