"""Where the read model lives: a SQLite file in the data dir (WAL), or PostgreSQL by URL."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url

from civicgrid.reporting import migrate

DB_ENV = "CIVICGRID_REPORTING_DB"

# Seconds a SQLite connection waits for another replica's write before giving up.
SQLITE_BUSY_TIMEOUT = 30.0


class DatabaseSettingsError(ValueError):
    pass


def database_url(env: dict[str, str] | None = None) -> str:
    """``CIVICGRID_REPORTING_DB`` if set; else ``<CIVICGRID_DATA_DIR>/reporting.sqlite``."""
    values = os.environ if env is None else env
    configured = values.get(DB_ENV)
    if configured:
        return normalise(configured)
    data_dir = Path(values.get("CIVICGRID_DATA_DIR", "data"))
    return f"sqlite:///{(data_dir / 'reporting.sqlite').absolute()}"


def normalise(url: str) -> str:
    """Accept the ``postgresql://`` form BI tools use; SQLAlchemy needs the driver named."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseSettingsError(f"{DB_ENV} is not a database URL: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseSettingsError(
            f"{DB_ENV} must be a sqlite:/// or postgresql:// URL, got {parsed.drivername}"
        )
    return parsed.render_as_string(hide_password=False)


def open_database(url: str, *, generation: int = 1) -> Engine:
    """An engine on the newest schema (migrations run here, on every start).

    A rebuild's generation n > 1 lives beside the first: SQLite in ``<name>.g<n>.sqlite``,
    PostgreSQL in schema ``reporting_g<n>`` of the same database.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and generation > 1:
            path = Path(database)
            database = str(path.with_name(f"{path.stem}.g{generation}{path.suffix}"))
            parsed = parsed.set(database=database)
        if database:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sqlite_engine(parsed)
    elif generation > 1:
        schema = f"reporting_g{generation}"
        admin = create_engine(parsed)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        admin.dispose()
        engine = create_engine(
            parsed, pool_pre_ping=True, connect_args={"options": f"-csearch_path={schema}"}
        )
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    migrate.upgrade(engine)
    return engine


class GenerationPointer:
    """Which generation of the read model is live; a rebuild moves it when caught up."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def current(self) -> int:
        try:
            return int(self.path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return 1

    def switch(self, generation: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(f"{generation}\n")
        temporary.replace(self.path)  # atomic: a crash leaves the old or the new, never half


def data_dir(env: dict[str, str] | None = None) -> Path:
    values = os.environ if env is None else env
    return Path(values.get("CIVICGRID_DATA_DIR", "data"))


def sqlite_engine(url: URL) -> Engine:
    """An engine whose every connection waits for a busy file and uses WAL."""
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT}
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: the API reads while the projector writes, without either waiting for the other.
    _into_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _into_wal(cursor: Any) -> None:
    """Switch to WAL, waiting as long as any other statement would for a busy file.

    Replicas opening a new file at once each switch it; two switches that meet deadlock on
    the file's lock, and SQLite refuses one at once ("database is locked") instead of
    calling the busy handler. The replica would fail to start, so it tries again instead.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
