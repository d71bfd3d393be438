"""The figures recounted in plain Python from folded facts: the tests' independent check of
the SQL in figures.py (same definitions, written again without SQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from civicgrid.city.workcalendar import CalendarNotCovered, WorkingCalendar
from civicgrid.reporting.durations import SpanFigures, Spread
from civicgrid.reporting.facts import LOCAL_LEVELS, RETURN_REASONS, IncidentFact
from civicgrid.reporting.figures import ESCALATION_LEVELS, Dimension

_KEYS: dict[Dimension, Callable[[IncidentFact], str | None]] = {
    Dimension.COMMUNITY: lambda x: x.community_id,
    Dimension.GRID: lambda x: x.grid_id,
    Dimension.UNIT: lambda x: x.lead_unit_id,
    Dimension.MATTER: lambda x: x.matter,
    Dimension.GROUP: lambda x: x.matter_group,
    Dimension.CHANNEL: lambda x: x.channel,
    Dimension.DAY: lambda x: x.reported_day,
    Dimension.CITY: lambda _: "city",
}


def recount(
    facts: Iterable[IncidentFact], dimension: Dimension, now: datetime
) -> dict[str | None, dict[str, int | tuple[int, int]]]:
    groups: dict[str | None, list[IncidentFact]] = {}
    for fact in facts:
        if fact.reported_at is not None:
            groups.setdefault(_KEYS[dimension](fact), []).append(fact)
    return {key: _one(rows, now) for key, rows in groups.items()}


def _one(rows: list[IncidentFact], now: datetime) -> dict[str, int | tuple[int, int]]:
    resolved = [x for x in rows if x.resolved_at is not None]
    out: dict[str, int | tuple[int, int]] = {
        "reported": len(rows),
        "merged": sum(x.merges for x in rows),
        "open": sum(x.closed_at is None for x in rows),
        "overdue": sum(
            x.closed_at is None
            and x.resolved_at is None
            and (
                x.resolve_on_time is False
                or (x.resolve_due_at is not None and x.resolve_due_at < now)
            )
            for x in rows
        ),
        "resolved": len(resolved),
        "warnings": sum(x.warnings for x in rows),
        "breaches": sum(x.breaches for x in rows),
        "escalations": sum(x.escalations for x in rows),
    }
    for reason in RETURN_REASONS:
        out[f"returns_{reason}"] = sum(getattr(x, f"returns_{reason}") for x in rows)
    for level in ESCALATION_LEVELS:
        out[f"escalated_level_{level}"] = sum(x.escalation_level >= level for x in rows)
    local = [x for x in resolved if not x.reached_department and x.resolved_level in LOCAL_LEVELS]
    out["headline"] = (len(local), len(resolved))
    for clock in ("accept", "arrive", "resolve"):
        decided = [getattr(x, f"{clock}_on_time") for x in rows]
        out[f"{clock}_on_time"] = (
            sum(v is True for v in decided),
            sum(v is not None for v in decided),
        )
    out["closed"] = (sum(x.closed_at is not None for x in resolved), len(resolved))
    out["first_time_resolved"] = (
        sum(x.returns == 0 and x.reopens == 0 for x in resolved),
        len(resolved),
    )
    out["returned"] = (sum(x.returns for x in rows), sum(x.assignments for x in rows))
    out["extended"] = (sum(x.extensions > 0 for x in rows), len(rows))
    out["reopened"] = (
        sum(x.reopens > 0 for x in rows),
        sum(x.resolved_at is not None or x.reopens > 0 for x in rows),
    )
    out["satisfied"] = (sum(x.satisfied is True for x in rows), sum(x.callbacks > 0 for x in rows))
    return out


def recount_durations(
    facts: Iterable[IncidentFact], dimension: Dimension, calendar: WorkingCalendar
) -> dict[str | None, dict[str, SpanFigures]]:
    """durations.durations restated over folded facts: which span, which unit, which rank."""
    spans: dict[str, Callable[[IncidentFact], tuple[datetime | None, datetime | None, str | None]]]
    spans = {
        "accept": lambda x: (x.first_assigned_at, x.accepted_at, x.accept_duration),
        "arrive": lambda x: (x.first_assigned_at, x.arrived_at, x.arrive_duration),
        "resolve": lambda x: (x.reported_at, x.resolved_at, x.resolve_duration),
        "close": lambda x: (x.reported_at, x.closed_at, x.resolve_duration),
    }
    groups: dict[str | None, list[IncidentFact]] = {}
    for fact in facts:
        if fact.reported_at is not None:
            groups.setdefault(_KEYS[dimension](fact), []).append(fact)
    out: dict[str | None, dict[str, SpanFigures]] = {}
    for key, rows in groups.items():
        out[key] = {}
        for span, times in spans.items():
            wall: list[float] = []
            working: list[float] = []
            not_covered = 0
            for began, ended, duration in map(times, rows):
                if began is None or ended is None or ended < began:
                    continue
                if duration is None or not duration.endswith("wd"):
                    wall.append((ended - began) / timedelta(minutes=1))
                    continue
                try:
                    working.append(calendar.working_days_elapsed(began, ended))
                except CalendarNotCovered:
                    not_covered += 1
            out[key][span] = SpanFigures(_rank(wall), _rank(working), not_covered)
    return out


def _rank(values: list[float]) -> Spread:
    if not values:
        return Spread(0, None, None)
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    # Nearest rank: the smallest value with at least 90% of the values at or below it.
    p90 = next(v for i, v in enumerate(ordered, start=1) if i >= 0.9 * len(ordered))
    return Spread(len(ordered), float(median), float(p90))
