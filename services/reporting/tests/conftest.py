"""Read-model databases for the reporting tests: a SQLite file, and a real PostgreSQL.

PostgreSQL comes from the system's server binaries (Debian's ``postgresql`` package, which
``tools/ci-deps.sh`` installs); where they are missing the PostgreSQL cases skip and say why.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from civicgrid.reporting.database import open_database
from civicgrid.servicekit.natsserver import free_port


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    def __init__(self, bin_dir: Path, base: Path) -> None:
        self.bin_dir = bin_dir
        self.data = base / "pgdata"
        self.sockets = base / "sockets"
        self.port = free_port()
        # initdb refuses to run as root; the Debian package creates the "postgres" user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    def start(self) -> None:
        self.sockets.mkdir(parents=True)
        if self.as_user:
            shutil.chown(self.data.parent, "postgres")
            self.data.parent.chmod(0o755)
            shutil.chown(self.sockets, "postgres")
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "civicgrid"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D", str(self.data),
            "-o", f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-l", str(self.data.parent / "postgres.log"),
            "-w",
            "start",
        )  # fmt: skip

    def stop(self) -> None:
        pg_ctl = str(self.bin_dir / "pg_ctl")
        stop = [*self.as_user, pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"]
        subprocess.run(stop, capture_output=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://civicgrid@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries not found:"
            " run tools/system-deps.sh (apt-get install postgresql)"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb cannot run as root")
    # Not under pytest's temporary root: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="civicgrid-postgres-"))
    base.chmod(0o755)
    server = PostgresServer(bin_dir, base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


_counter = iter(range(1, 1_000_000))


def new_database(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> Engine:
    return open_database(new_database_url(request, tmp_path, backend))


def new_database_url(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> str:
    """The URL of a new, empty database on ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'reporting-{next(_counter)}.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"reporting_{next(_counter)}_{int(time.time() * 1000) % 100000}"
    admin = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, migrated read model on each backend."""
    created = new_database(request, tmp_path, request.param)
    yield created
    created.dispose()


@pytest.fixture
def make_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Engine]:
    """A factory of fresh read models, for tests (hypothesis) that need one per example."""

    def make(backend: str) -> Engine:
        return new_database(request, tmp_path, backend)

    return make


@pytest.fixture
def make_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """A factory of new, empty databases' URLs, for tests that need several."""

    def make(backend: str) -> str:
        return new_database_url(request, tmp_path, backend)

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database's URL on each backend (the service migrates it at start)."""
    return new_database_url(request, tmp_path, request.param)
