from __future__ import annotations

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
