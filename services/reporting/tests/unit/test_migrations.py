from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from civicgrid.reporting.database import open_database
from civicgrid.reporting.migrate import alembic_config
from civicgrid.reporting.schema import metadata


def test_the_migrations_build_exactly_the_tables_the_code_uses(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    # Type comparisons aside (UtcDateTime is DateTime(timezone=True) in the database).
    assert [d for d in differences if d[0] != "modify_type"] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_model_from_an_older_version_is_upgraded_at_start_and_keeps_its_rows(
    backend: str,
    make_engine: Callable[[str], Engine],
) -> None:
    fresh = make_engine(backend)  # migrated to head; only its URL is wanted
    url = fresh.url.render_as_string(hide_password=False)
    fresh.dispose()
    old = create_engine(url)
    config = alembic_config()
    with old.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    with old.begin() as connection:
        connection.execute(
            text("INSERT INTO incident_facts (incident_id, last_sequence) VALUES ('old', 7)")
        )
    old.dispose()
    upgraded = open_database(url)
    with upgraded.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        kept = connection.execute(text("SELECT last_sequence FROM incident_facts")).scalar()
    upgraded.dispose()
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None and head > "0001"
    assert (version, kept) == (head, 7)


# A replica in a process of its own: imported, it says so, then migrates on the word "go".
REPLICA = """
import sys
from civicgrid.reporting.database import open_database
print("ready", flush=True)
sys.stdin.readline()
open_database(sys.argv[1]).dispose()
"""


def test_replicas_starting_at_once_on_a_new_model_all_start(database_url: str) -> None:
    """Every replica migrates at start: four on one new database must not each create it."""
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, database_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for replica in replicas:
            assert replica.stdout is not None and replica.stdout.readline() == "ready\n"
        for replica in replicas:  # all four at the same starting line
            assert replica.stdin is not None
            replica.stdin.write("go\n")
            replica.stdin.flush()
        failed = [
            err
            for replica in replicas
            if (err := replica.communicate(timeout=60)[1]) or replica.returncode
        ]
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
                replica.wait()
    assert failed == []
    engine = create_engine(database_url)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert versions == [(head,)]
