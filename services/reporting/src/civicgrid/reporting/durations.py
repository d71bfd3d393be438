"""Median and 90th percentile of the time to accept, arrive, resolve and close, per group.

Accept and arrive count from the first assignment, resolve and close from the report. Each
span is measured in the unit of the clock that governs it (close: the resolve clock, the
incident's lifecycle clock):

- a clock in wall time (``30m``, ``24h``): calendar minutes;
- a clock in working days (``5wd``, e.g. difficult matters' resolve): working days, by the
  same calendar sla counts the deadline with (civicgrid.city.workcalendar): the start's local
  day does not count, each working day after it counts 00:00-24:00 (a part of one pro rata),
  weekends and holidays not at all. An incident resolved exactly at its 5wd deadline took 5.

The two are never mixed in one median: each span reports both, with their own counts. A span a
calendar cannot measure (its end in a year the holiday data does not cover) is counted in
``not_covered`` and left out, never guessed. Clocks started by a producer that did not record
the duration (before sla wrote it) count as wall time.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from civicgrid.city.workcalendar import CalendarNotCovered, WorkingCalendar
from civicgrid.reporting.figures import DIMENSION_COLUMNS, Dimension, Period
from civicgrid.reporting.schema import incident_facts as f

# span -> (start column, end column, the column of the governing clock's duration)
SPANS: dict[str, tuple[str, str, str]] = {
    "accept": ("first_assigned_at", "accepted_at", "accept_duration"),
    "arrive": ("first_assigned_at", "arrived_at", "arrive_duration"),
    "resolve": ("reported_at", "resolved_at", "resolve_duration"),
    "close": ("reported_at", "closed_at", "resolve_duration"),
}


def counts_working_days(duration: str | None) -> bool:
    """Whether a clock's duration, as the policy wrote it, is in working days ("5wd")."""
    return duration is not None and duration.endswith("wd")


@dataclass(frozen=True)
class Spread:
    count: int
    median: float | None
    p90: float | None


def spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread(0, None, None)
    ordered = sorted(values)
    # Nearest rank: the p90 is a duration some incident really took.
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return Spread(len(ordered), float(statistics.median(ordered)), float(p90))


@dataclass(frozen=True)
class SpanFigures:
    minutes: Spread  # incidents whose clock runs in wall time
    working_days: Spread  # incidents whose clock runs in working days
    not_covered: int = 0  # working-day spans the holiday data does not cover


@dataclass
class _Samples:
    minutes: list[float]
    working_days: list[float]
    not_covered: int = 0


def durations(
    engine: Engine, dimension: Dimension, period: Period, calendar: WorkingCalendar
) -> dict[str | None, dict[str, SpanFigures]]:
    key = DIMENSION_COLUMNS[dimension].label("key")
    columns = sorted({column for span in SPANS.values() for column in span})
    query = select(key, *(f.c[name] for name in columns)).where(period.condition())
    samples: dict[str | None, dict[str, _Samples]] = {}
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=5000).execute(query)
        for row in result.mappings():
            group = samples.setdefault(
                None if row["key"] is None else str(row["key"]),
                {span: _Samples([], []) for span in SPANS},
            )
            for span, (start, end, clock) in SPANS.items():
                began: datetime | None = row[start]
                ended: datetime | None = row[end]
                if began is None or ended is None or ended < began:
                    continue
                into = group[span]
                if not counts_working_days(row[clock]):
                    into.minutes.append((ended - began).total_seconds() / 60)
                    continue
                try:
                    into.working_days.append(calendar.working_days_elapsed(began, ended))
                except CalendarNotCovered:
                    into.not_covered += 1
    return {
        group: {
            span: SpanFigures(spread(s.minutes), spread(s.working_days), s.not_covered)
            for span, s in spans.items()
        }
        for group, spans in sorted(samples.items(), key=lambda item: item[0] or "")
    }


def as_rows(table: dict[str | None, dict[str, SpanFigures]]) -> list[dict[str, Any]]:
    """One flat object per span, so ``?format=csv`` gives one column per figure."""
    rows = []
    for group, spans in table.items():
        row: dict[str, Any] = {"key": group}
        for span, value in spans.items():
            row[span] = {
                "count": value.minutes.count,
                "median_minutes": value.minutes.median,
                "p90_minutes": value.minutes.p90,
                "working_count": value.working_days.count,
                "median_working_days": value.working_days.median,
                "p90_working_days": value.working_days.p90,
                "not_covered": value.not_covered,
            }
        rows.append(row)
    return rows
