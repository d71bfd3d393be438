"""Where the read model lives: a SQLite file in the data dir (WAL), or PostgreSQL by URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from civicgrid.reporting import migrate

DB_ENV = "CIVICGRID_REPORTING_DB"


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


def open_database(url: str) -> Engine:
    """An engine on the newest schema (migrations run here, on every start)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    migrate.upgrade(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: the API reads while the projector writes, without either waiting for the other.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
