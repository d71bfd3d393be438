"""Median and 90th percentile of the time to accept, arrive, resolve and close, per group.

Calendar time, in minutes: accept and arrive from the first assignment, resolve and close from
the report. Not yet working-day aware: that needs the city's holiday calendar, which the SLA
service's clock code is bringing (see the report of issue 9).
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

from civicgrid.reporting.figures import DIMENSION_COLUMNS, Dimension, Period
from civicgrid.reporting.schema import incident_facts as f

SPANS: dict[str, tuple[str, str]] = {
    "accept": ("first_assigned_at", "accepted_at"),
    "arrive": ("first_assigned_at", "arrived_at"),
    "resolve": ("reported_at", "resolved_at"),
    "close": ("reported_at", "closed_at"),
}


@dataclass(frozen=True)
class Spread:
    count: int
    median_minutes: float | None
    p90_minutes: float | None


def spread(minutes: Sequence[float]) -> Spread:
    if not minutes:
        return Spread(0, None, None)
    ordered = sorted(minutes)
    # Nearest rank: the p90 is a duration some incident really took.
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return Spread(len(ordered), float(statistics.median(ordered)), float(p90))


def durations(
    engine: Engine, dimension: Dimension, period: Period
) -> dict[str | None, dict[str, Spread]]:
    key = DIMENSION_COLUMNS[dimension].label("key")
    columns = sorted({column for span in SPANS.values() for column in span})
    query = select(key, *(f.c[name] for name in columns)).where(period.condition())
    samples: dict[str | None, dict[str, list[float]]] = {}
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=5000).execute(query)
        for row in result.mappings():
            group = samples.setdefault(
                None if row["key"] is None else str(row["key"]), {span: [] for span in SPANS}
            )
            for span, (start, end) in SPANS.items():
                began: datetime | None = row[start]
                ended: datetime | None = row[end]
                if began is not None and ended is not None and ended >= began:
                    group[span].append((ended - began).total_seconds() / 60)
    return {
        group: {span: spread(values) for span, values in spans.items()}
        for group, spans in sorted(samples.items(), key=lambda item: item[0] or "")
    }


def as_rows(table: dict[str | None, dict[str, Spread]]) -> list[dict[str, Any]]:
    rows = []
    for group, spans in table.items():
        row: dict[str, Any] = {"key": group}
        for span, value in spans.items():
            row[span] = {
                "count": value.count,
                "median_minutes": value.median_minutes,
                "p90_minutes": value.p90_minutes,
            }
        rows.append(row)
    return rows
