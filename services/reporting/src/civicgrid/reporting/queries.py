"""Read-side queries beyond the grouped figures: ranking, overdue list, the per-incident export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from civicgrid.reporting.facts import FACT_COLUMNS
from civicgrid.reporting.figures import Dimension, FigureRow, Period, _overdue, figures
from civicgrid.reporting.schema import incident_facts as f

DEFAULT_MIN_SAMPLE = 10
EXPORT_CHUNK = 1000


@dataclass(frozen=True)
class RankedRow:
    rank: int | None  # None: listed, but below the minimum sample
    key: str | None
    numerator: int
    denominator: int

    @property
    def ratio(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


def month_period(month: str) -> Period:
    start = date.fromisoformat(f"{month}-01")
    following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return Period(start, date.fromordinal(following.toordinal() - 1))


def ranking(
    engine: Engine,
    dimension: Dimension,
    month: str,
    now: datetime,
    *,
    figure: str = "headline",
    min_sample: int = DEFAULT_MIN_SAMPLE,
) -> list[RankedRow]:
    """Highest ratio first; ties share a rank. Below ``min_sample`` decided cases: no rank."""
    with engine.connect() as connection:
        rows = figures(connection, dimension, month_period(month), now)
    scored = sorted(
        (row for row in rows if row.key is not None),
        key=lambda row: (-(row.ratio(figure) or 0.0), row.key or ""),
    )
    ranked: list[RankedRow] = []
    last: tuple[int, float | None] | None = None
    position = 0
    for row in scored:
        numerator, denominator = row.ratios[figure]
        if denominator < min_sample:
            continue
        position += 1
        ratio = row.ratio(figure)
        rank = last[0] if last is not None and last[1] == ratio else position
        last = (rank, ratio)
        ranked.append(RankedRow(rank, row.key, numerator, denominator))
    unranked = [
        RankedRow(None, row.key, *row.ratios[figure])
        for row in scored
        if row.ratios[figure][1] < min_sample
    ]
    return ranked + unranked


OVERDUE_COLUMNS = (
    "incident_id",
    "community_id",
    "grid_id",
    "matter",
    "level",
    "lead_unit_id",
    "reported_at",
    "resolve_due_at",
    "escalation_level",
)


def overdue(engine: Engine, now: datetime, community: str | None) -> list[dict[str, Any]]:
    query = select(*(f.c[name] for name in OVERDUE_COLUMNS)).where(_overdue(now))
    if community is not None:
        query = query.where(f.c.community_id == community)
    query = query.order_by(f.c.resolve_due_at, f.c.incident_id)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def export_rows(engine: Engine) -> Iterator[tuple[Any, ...]]:
    """Every fact row, read in chunks from a server-side cursor: constant memory."""
    query = select(*(f.c[name] for name in FACT_COLUMNS)).order_by(f.c.incident_id)
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=EXPORT_CHUNK).execute(
            query
        )
        for row in result:
            yield tuple(row)


def grouped(
    engine: Engine,
    dimension: Dimension,
    period: Period,
    now: datetime,
    community: str | None = None,
) -> list[FigureRow]:
    with engine.connect() as connection:
        return figures(connection, dimension, period, now, community=community)
