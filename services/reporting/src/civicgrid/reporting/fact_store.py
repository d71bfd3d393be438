"""The projection's database side: fold a batch into the fact rows, recount the figure cells
they touched, and move the checkpoint, all in one transaction, so a crash leaves all or
nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.dml import Insert

from civicgrid.events.projector import PositionMoved, ProjectedEvent
from civicgrid.reporting.facts import DEFAULT_ZONE, FACT_COLUMNS, IncidentFact, project
from civicgrid.reporting.figures import refresh_cells
from civicgrid.reporting.schema import incident_facts, projection_checkpoints

_UPDATE_BY_ID = (
    update(incident_facts)
    .where(incident_facts.c.incident_id == bindparam("_incident_id"))
    .values({column: bindparam(column) for column in FACT_COLUMNS if column != "incident_id"})
)


def _keyed(row: dict[str, object]) -> dict[str, object]:
    row["_incident_id"] = row.pop("incident_id")
    return row


# Keeps each IN (...) list well below SQLite's and PostgreSQL's parameter limits.
_LOAD_CHUNK = 500


@dataclass
class FactStore:
    engine: Engine
    name: str = "incident_facts"
    zone: ZoneInfo = DEFAULT_ZONE

    def position(self) -> int:
        with self.engine.connect() as connection:
            return _position(connection, self.name) or 0

    def apply(self, events: Sequence[ProjectedEvent], *, after: int, position: int) -> int:
        """Fold ``events`` into their rows and store ``position``; returns rows changed.

        Refused with PositionMoved when the stored position is not ``after``: someone else
        (another replica on the same PostgreSQL) projected meanwhile.
        """
        with self.engine.begin() as connection:
            # Lock the checkpoint before reading it: replicas sharing one database (PostgreSQL,
            # or one SQLite file) then apply one after another, and a replica that read a
            # position someone has since moved is refused instead of writing stale rows.
            # On a new database there is no row to lock yet: it is made first, and a replica
            # making it at the same moment waits on the other's (PostgreSQL waits on an
            # uncommitted duplicate key). Without it, two replicas each found nothing to lock,
            # wrote the same first rows, and the second failed on a duplicate key.
            connection.execute(_insert_unless_present(self.engine, self.name))
            connection.execute(
                update(projection_checkpoints)
                .where(projection_checkpoints.c.projection == self.name)
                .values(position=projection_checkpoints.c.position)
            )
            stored = _position(connection, self.name)
            if stored != after:
                raise PositionMoved(f"{self.name}: stored position {stored}, expected {after}")
            rows = _load(connection, {item.event.incident_id for item in events})
            existing = set(rows)
            before = dict(rows)
            changed: dict[str, IncidentFact] = {}
            for item in events:
                incident_id = item.event.incident_id
                folded = project(rows.get(incident_id), item.event, item.sequence, self.zone)
                if folded is not None:
                    rows[incident_id] = changed[incident_id] = folded
            # One executemany per kind of write: per-row statements cost more than the fold.
            inserts = [f.as_row() for i, f in changed.items() if i not in existing]
            updates = [_keyed(f.as_row()) for i, f in changed.items() if i in existing]
            if inserts:
                connection.execute(insert(incident_facts), inserts)
            if updates:
                connection.execute(_UPDATE_BY_ID, updates)
            # The cells (day, community) each changed row was in, and is in now.
            cells = {_cell(before.get(i)) for i in changed} | {_cell(r) for r in changed.values()}
            cells.discard(None)
            refresh_cells(connection, [cell for cell in cells if cell is not None])
            connection.execute(
                update(projection_checkpoints)
                .where(projection_checkpoints.c.projection == self.name)
                .values(position=position, updated_at=datetime.now(UTC))
            )
            return len(changed)

    def fact(self, incident_id: str) -> IncidentFact | None:
        with self.engine.connect() as connection:
            return _load(connection, {incident_id}).get(incident_id)


def _cell(fact: IncidentFact | None) -> tuple[str, str | None] | None:
    if fact is None or fact.reported_day is None:
        return None
    return fact.reported_day, fact.community_id


def _insert_unless_present(engine: Engine, name: str) -> Insert:
    dialect_insert = postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert
    return (
        dialect_insert(projection_checkpoints)
        .values(projection=name, position=0, updated_at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=[projection_checkpoints.c.projection])
    )


def _position(connection: Connection, name: str) -> int | None:
    stored = connection.execute(
        select(projection_checkpoints.c.position).where(projection_checkpoints.c.projection == name)
    ).scalar_one_or_none()
    return None if stored is None else int(stored)


def _load(connection: Connection, incident_ids: set[str]) -> dict[str, IncidentFact]:
    found: dict[str, IncidentFact] = {}
    ids = sorted(incident_ids)
    for start in range(0, len(ids), _LOAD_CHUNK):
        chunk = ids[start : start + _LOAD_CHUNK]
        query = select(incident_facts).where(incident_facts.c.incident_id.in_(chunk))
        for row in connection.execute(query).mappings():
            fact = IncidentFact(**{column: row[column] for column in FACT_COLUMNS})
            found[fact.incident_id] = fact
    return found
