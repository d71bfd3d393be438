"""The read model's tables. Alembic's versions (migrations/) create them; this is what code uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()


def _count(name: str) -> Column[int]:
    return Column(name, Integer, nullable=False, server_default="0")


def _id(name: str, *, nullable: bool = True) -> Column[str]:
    return Column(name, String(128), nullable=nullable)


incident_facts = Table(
    "incident_facts",
    metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("last_sequence", BigInteger, nullable=False),
    Column("reported_at", UtcDateTime),
    Column("reported_day", String(10)),
    _id("channel"),
    _id("matter"),
    _id("matter_group"),
    # Unbounded: the contract does not bound a jurisdiction's area ids (migration 0002).
    Column("community_id", String),
    Column("grid_id", String),
    Column("micro_grid_id", String),
    Column("level", String(32)),
    Column("reached_department", Boolean, nullable=False, server_default="0"),
    _id("lead_unit_id"),
    Column("lead_unit_kind", String(32)),
    _count("assignments"),
    Column("first_assigned_at", UtcDateTime),
    Column("accepted_at", UtcDateTime),
    Column("arrived_at", UtcDateTime),
    Column("resolved_at", UtcDateTime),
    Column("resolved_level", String(32)),
    Column("closed_at", UtcDateTime),
    Column("reopened_at", UtcDateTime),
    Column("merged_into", String(64)),
    _count("returns"),
    _count("returns_wrong_jurisdiction"),
    _count("returns_not_our_duty"),
    _count("returns_unclear_ownership"),
    _count("returns_insufficient_information"),
    _count("returns_other"),
    _count("merges"),
    _count("suspensions"),
    Column("suspended", Boolean, nullable=False, server_default="0"),
    _count("extensions"),
    _count("reopens"),
    Column("accept_due_at", UtcDateTime),
    Column("accept_on_time", Boolean),
    _count("accept_clock_version"),
    Column("accept_duration", String(16)),
    Column("arrive_due_at", UtcDateTime),
    Column("arrive_on_time", Boolean),
    _count("arrive_clock_version"),
    Column("arrive_duration", String(16)),
    Column("resolve_due_at", UtcDateTime),
    Column("resolve_on_time", Boolean),
    _count("resolve_clock_version"),
    Column("resolve_duration", String(16)),
    _count("warnings"),
    _count("breaches"),
    _count("escalations"),
    _count("escalation_level"),
    _count("callbacks"),
    Column("satisfied", Boolean),
    Column("rating", Integer),
    Index("ix_incident_facts_reported_at", "reported_at"),
    Index("ix_incident_facts_community", "community_id", "reported_at"),
    # "Overdue now" per community, day or city, and the overdue list: the open, unresolved
    # rows only, read from the index alone (migration 0004; it replaced ix_incident_facts_open).
    Index(
        "ix_incident_facts_overdue",
        "closed_at",
        "resolved_at",
        "resolve_on_time",
        "resolve_due_at",
        "reported_at",
        "reported_day",
        "community_id",
    ),
    # figure_cells' refresh reads one (day, community) at a time through it.
    Index("ix_incident_facts_day_community", "reported_day", "community_id"),
)

# Every additive figure per (local day of report, community): the statistics per community,
# per day and for the city are sums of these few thousand rows instead of a pass over every
# incident. The projection refreshes the cells its batch touched, in the batch's transaction
# (figures.refresh_cells); "overdue now" depends on the hour, so it is counted from the facts.
CELL_FIGURES = (
    "reported",
    "merged",
    "open",
    "resolved",
    "warnings",
    "breaches",
    "escalations",
    "returns_wrong_jurisdiction",
    "returns_not_our_duty",
    "returns_unclear_ownership",
    "returns_insufficient_information",
    "returns_other",
    "escalated_level_1",
    "escalated_level_2",
    "escalated_level_3",
    "escalated_level_4",
    *(
        f"{ratio}__{part}"
        for ratio in (
            "headline",
            "accept_on_time",
            "arrive_on_time",
            "resolve_on_time",
            "closed",
            "first_time_resolved",
            "returned",
            "extended",
            "reopened",
            "satisfied",
        )
        for part in ("n", "d")
    ),
)
NO_COMMUNITY = ""  # a key column cannot be NULL: incidents not (yet) in a community

figure_cells = Table(
    "figure_cells",
    metadata,
    Column("reported_day", String(10), primary_key=True),
    Column("community_key", String, primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in CELL_FIGURES),
)

projection_checkpoints = Table(
    "projection_checkpoints",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
