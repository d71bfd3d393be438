"""The figures, each a numerator over a denominator, grouped by one dimension, in SQL.

Every definition lives here once; the tests recount the same definitions in plain Python from
the folded events and compare. Dates are the city's local days of the report (``from`` and
``to`` inclusive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, literal, not_, or_, select, true
from sqlalchemy.engine import Connection

from civicgrid.reporting.facts import LOCAL_LEVELS, RETURN_REASONS
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
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


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
                f.c.resolved_level.in_(sorted(LOCAL_LEVELS)),
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


def figures(
    connection: Connection,
    dimension: Dimension,
    period: Period,
    now: datetime,
    *,
    where: ColumnElement[bool] | None = None,
) -> list[FigureRow]:
    key = DIMENSION_COLUMNS[dimension].label("key")
    count_columns = counts(now)
    columns: list[ColumnElement[Any]] = [key]
    columns += [expr.label(name) for name, expr in count_columns.items()]
    for ratio in RATIOS:
        columns.append(ratio.numerator.label(f"{ratio.name}__n"))
        columns.append(ratio.denominator.label(f"{ratio.name}__d"))
    condition = period.condition() if where is None else and_(period.condition(), where)
    query = select(*columns).where(condition).group_by(key).order_by(key)
    rows: list[FigureRow] = []
    for row in connection.execute(query).mappings():
        rows.append(
            FigureRow(
                key=None if row["key"] is None else str(row["key"]),
                counts={name: int(row[name]) for name in count_columns},
                ratios={
                    r.name: (int(row[f"{r.name}__n"]), int(row[f"{r.name}__d"])) for r in RATIOS
                },
            )
        )
    return rows


def figure_names() -> Sequence[str]:
    return (*counts(datetime.now(UTC)).keys(), *RATIO_NAMES)
