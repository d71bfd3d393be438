"""The figures, each a numerator over a denominator, grouped by one dimension, in SQL.

Every definition lives here once; the tests recount the same definitions in plain Python from
the folded events and compare. Dates are the city's local days of the report (``from`` and
``to`` inclusive).

Per community, per day and for the city the figures are sums over ``figure_cells`` (the same
definitions, aggregated per local day and community by ``refresh_cells`` as the projection
writes), so a wall display's poll does not pass over every incident of the year.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection

from civicgrid.reporting.facts import LOCAL_LEVELS, RETURN_REASONS
from civicgrid.reporting.schema import CELL_FIGURES, NO_COMMUNITY
from civicgrid.reporting.schema import figure_cells as c
from civicgrid.reporting.schema import incident_facts as f

HEADLINE_TARGET = 0.9
ESCALATION_LEVELS = (1, 2, 3, 4)


class Dimension(StrEnum):
    COMMUNITY = "community"
    GRID = "grid"
    UNIT = "unit"
    MATTER = "matter"
    GROUP = "group"
    CHANNEL = "channel"
    DAY = "day"
    CITY = "city"


DIMENSION_COLUMNS: Mapping[Dimension, ColumnElement[Any]] = {
    Dimension.COMMUNITY: f.c.community_id,
    Dimension.GRID: f.c.grid_id,
    Dimension.UNIT: f.c.lead_unit_id,
    Dimension.MATTER: f.c.matter,
    Dimension.GROUP: f.c.matter_group,
    Dimension.CHANNEL: f.c.channel,
    Dimension.DAY: f.c.reported_day,
    Dimension.CITY: literal("city"),
}


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # count(*) FILTER: SQLite (3.30+) and PostgreSQL both have it, and it is a quarter
    # cheaper per row than sum(CASE ...) on SQLite.
    return func.count().filter(condition)


def _total(column: ColumnElement[int]) -> ColumnElement[int]:
    return func.coalesce(func.sum(column), 0)


def _is(column: ColumnElement[Any]) -> ColumnElement[bool]:
    return column == true()


@dataclass(frozen=True)
class Ratio:
    name: str
    numerator: ColumnElement[int]
    denominator: ColumnElement[int]
    label_zh: str
    label_en: str


_resolved = f.c.resolved_at.is_not(None)
_open = f.c.closed_at.is_(None)


def _overdue(now: datetime) -> ColumnElement[bool]:
    return and_(
        _open,
        f.c.resolved_at.is_(None),
        or_(f.c.resolve_on_time == false(), f.c.resolve_due_at < now),
    )


def counts(now: datetime) -> dict[str, ColumnElement[int]]:
    found: dict[str, ColumnElement[int]] = {
        "reported": func.count(),
        "merged": _total(f.c.merges),
        "open": _count(_open),
        "overdue": _count(_overdue(now)),
        "resolved": _count(_resolved),
        "warnings": _total(f.c.warnings),
        "breaches": _total(f.c.breaches),
        "escalations": _total(f.c.escalations),
    }
    for reason in RETURN_REASONS:
        found[f"returns_{reason}"] = _total(f.c[f"returns_{reason}"])
    for level in ESCALATION_LEVELS:
        found[f"escalated_level_{level}"] = _count(f.c.escalation_level >= level)
    return found


RATIOS: tuple[Ratio, ...] = (
    Ratio(
        "headline",
        _count(
            and_(
                _resolved,
                not_(_is(f.c.reached_department)),
                # Not in_(): an expanding IN cannot run in an executemany (refresh_cells).
                or_(*(f.c.resolved_level == level for level in sorted(LOCAL_LEVELS))),
            )
        ),
        _count(_resolved),
        "网格/社区层级办结率",
        "Resolved at grid or community level",
    ),
    Ratio(
        "accept_on_time",
        _count(_is(f.c.accept_on_time)),
        _count(f.c.accept_on_time.is_not(None)),
        "及时签收率",
        "Accepted on time",
    ),
    Ratio(
        "arrive_on_time",
        _count(_is(f.c.arrive_on_time)),
        _count(f.c.arrive_on_time.is_not(None)),
        "及时到场率",
        "Arrived on time",
    ),
    Ratio(
        "resolve_on_time",
        _count(_is(f.c.resolve_on_time)),
        _count(f.c.resolve_on_time.is_not(None)),
        "按时办结率",
        "Resolved on time",
    ),
    Ratio(
        "closed",
        _count(and_(_resolved, f.c.closed_at.is_not(None))),
        _count(_resolved),
        "结案率",
        "Closed of resolved",
    ),
    Ratio(
        "first_time_resolved",
        _count(and_(_resolved, f.c.returns == 0, f.c.reopens == 0)),
        _count(_resolved),
        "一次办结率",
        "Resolved without return or reopen",
    ),
    Ratio("returned", _total(f.c.returns), _total(f.c.assignments), "退单率", "Returns"),
    Ratio("extended", _count(f.c.extensions > 0), func.count(), "延期率", "Extended"),
    Ratio(
        "reopened",
        _count(f.c.reopens > 0),
        _count(or_(_resolved, f.c.reopens > 0)),
        "返工率",
        "Reopened",
    ),
    Ratio(
        "satisfied",
        _count(_is(f.c.satisfied)),
        _count(f.c.callbacks > 0),
        "满意率",
        "Satisfied of called back",
    ),
)
RATIO_NAMES = tuple(ratio.name for ratio in RATIOS)
COUNT_NAMES = tuple(counts(datetime(1970, 1, 1, tzinfo=UTC)))


@dataclass(frozen=True)
class Period:
    start: date | None = None
    end: date | None = None  # inclusive

    def condition(self) -> ColumnElement[bool]:
        conditions: list[ColumnElement[bool]] = [f.c.reported_at.is_not(None)]
        if self.start is not None:
            conditions.append(f.c.reported_day >= self.start.isoformat())
        if self.end is not None:
            conditions.append(f.c.reported_day <= self.end.isoformat())
        return and_(*conditions)


@dataclass(frozen=True)
class FigureRow:
    key: str | None
    counts: Mapping[str, int]
    ratios: Mapping[str, tuple[int, int]]

    def ratio(self, name: str) -> float | None:
        numerator, denominator = self.ratios[name]
        return numerator / denominator if denominator else None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            **self.counts,
            **{
                name: {"numerator": n, "denominator": d, "ratio": self.ratio(name)}
                for name, (n, d) in self.ratios.items()
            },
        }


CELL_DIMENSIONS = frozenset({Dimension.COMMUNITY, Dimension.DAY, Dimension.CITY})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cell_expressions() -> dict[str, ColumnElement[int]]:
    """Every figure but "overdue now", as aggregates over fact rows: what a cell holds."""
    found = {name: expr for name, expr in counts(_EPOCH).items() if name != "overdue"}
    for ratio in RATIOS:
        found[f"{ratio.name}__n"] = ratio.numerator
        found[f"{ratio.name}__d"] = ratio.denominator
    return found


if tuple(cell_expressions()) != CELL_FIGURES:  # pragma: no cover - a definition without a column
    raise RuntimeError("schema.CELL_FIGURES must list figures.cell_expressions(), in order")


def _cells_of(condition: ColumnElement[bool]) -> Any:
    community = func.coalesce(f.c.community_id, NO_COMMUNITY)
    return (
        select(f.c.reported_day, community, *cell_expressions().values())
        .where(f.c.reported_at.is_not(None), condition)
        .group_by(f.c.reported_day, community)
    )


_CELL_COLUMNS = ["reported_day", "community_key", *CELL_FIGURES]
# Built once: the projection refreshes cells in every batch, and building these expressions
# (and their cache keys) cost more than running them.
_DELETE_CELL = delete(c).where(
    c.c.reported_day == bindparam("day"), c.c.community_key == bindparam("key")
)
_INSERT_CELL = insert(c).from_select(
    _CELL_COLUMNS,
    _cells_of(and_(f.c.reported_day == bindparam("day"), f.c.community_id == bindparam("key"))),
)
_INSERT_CELL_WITHOUT_COMMUNITY = insert(c).from_select(
    _CELL_COLUMNS,
    _cells_of(and_(f.c.reported_day == bindparam("day"), f.c.community_id.is_(None))),
)


def refresh_cells(connection: Connection, keys: Iterable[tuple[str, str | None]]) -> None:
    """Recount the cells of these (day, community) pairs from their facts, in the caller's
    transaction. A cell left with no incident disappears."""
    cells = [
        {"day": day, "key": NO_COMMUNITY if community is None else community}
        for day, community in keys
    ]
    if not cells:
        return
    connection.execute(_DELETE_CELL, cells)
    placed = [cell for cell in cells if cell["key"] != NO_COMMUNITY]
    if placed:
        connection.execute(_INSERT_CELL, placed)
    unplaced = [{"day": cell["day"]} for cell in cells if cell["key"] == NO_COMMUNITY]
    if unplaced:
        connection.execute(_INSERT_CELL_WITHOUT_COMMUNITY, unplaced)


def rebuild_cells(connection: Connection) -> None:
    """Every cell recounted from the facts (a migration that changes a definition calls it)."""
    connection.execute(delete(c))
    columns = ["reported_day", "community_key", *CELL_FIGURES]
    connection.execute(insert(c).from_select(columns, _cells_of(true())))


def figures(
    connection: Connection,
    dimension: Dimension,
    period: Period,
    now: datetime,
    *,
    community: str | None = None,
) -> list[FigureRow]:
    """The figures per ``dimension`` over ``period`` (of one community, if given)."""
    if dimension in CELL_DIMENSIONS:
        return _from_cells(connection, dimension, period, now, community)
    key = DIMENSION_COLUMNS[dimension].label("key")
    count_columns = counts(now)
    columns: list[ColumnElement[Any]] = [key]
    columns += [expr.label(name) for name, expr in count_columns.items()]
    for ratio in RATIOS:
        columns.append(ratio.numerator.label(f"{ratio.name}__n"))
        columns.append(ratio.denominator.label(f"{ratio.name}__d"))
    condition = period.condition()
    if community is not None:
        condition = and_(condition, f.c.community_id == community)
    query = select(*columns).where(condition).group_by(key).order_by(key)
    return [_row(row["key"], dict(row)) for row in connection.execute(query).mappings()]


_CELL_KEYS: Mapping[Dimension, ColumnElement[Any]] = {
    Dimension.COMMUNITY: c.c.community_key,
    Dimension.DAY: c.c.reported_day,
    Dimension.CITY: literal("city"),
}


def _from_cells(
    connection: Connection,
    dimension: Dimension,
    period: Period,
    now: datetime,
    community: str | None,
) -> list[FigureRow]:
    conditions: list[ColumnElement[bool]] = [true()]
    if period.start is not None:
        conditions.append(c.c.reported_day >= period.start.isoformat())
    if period.end is not None:
        conditions.append(c.c.reported_day <= period.end.isoformat())
    if community is not None:
        conditions.append(c.c.community_key == community)
    key = _CELL_KEYS[dimension].label("key")
    sums = (
        select(key, *(func.sum(c.c[name]).label(name) for name in CELL_FIGURES))
        .where(*conditions)
        .group_by(key)
    )
    # Overdue depends on the hour: counted from the open facts (ix_incident_facts_overdue).
    fact_key = DIMENSION_COLUMNS[dimension].label("key")
    late = and_(period.condition(), _overdue(now))
    if community is not None:
        late = and_(late, f.c.community_id == community)
    overdue = {
        row.key: int(row.overdue)
        for row in connection.execute(
            select(fact_key, func.count().label("overdue")).where(late).group_by(fact_key)
        )
    }
    rows = []
    for row in connection.execute(sums).mappings():
        raw = row["key"]
        group = (
            None
            if raw is None or (dimension is Dimension.COMMUNITY and raw == NO_COMMUNITY)
            else raw
        )
        values = dict(row)
        values["overdue"] = overdue.get(group, 0)
        rows.append(_row(group, values))
    return sorted(rows, key=lambda r: (r.key is not None, r.key or ""))


def _row(key: Any, values: Mapping[str, Any]) -> FigureRow:
    return FigureRow(
        key=None if key is None else str(key),
        counts={name: int(values[name] or 0) for name in COUNT_NAMES},
        ratios={
            r.name: (int(values[f"{r.name}__n"] or 0), int(values[f"{r.name}__d"] or 0))
            for r in RATIOS
        },
    )


def figure_names() -> Sequence[str]:
    return (*counts(datetime.now(UTC)).keys(), *RATIO_NAMES)
