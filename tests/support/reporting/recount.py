"""The figures recounted in plain Python from folded facts: the tests' independent check of
the SQL in figures.py (same definitions, written again without SQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

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
