"""How far ahead the holiday data reaches, for a metric and a start-up warning.

Next year's official schedule is published around November; until the package or
calendar.yaml carries it, working-day deadlines that cross the year end cannot be computed
(they dead-letter with the reason, never guess). The operator needs weeks of notice, not a
surprise on 24 December.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import structlog

from civicgrid.city.workcalendar import WorkingCalendar

log = structlog.get_logger("civicgrid.sla.calendar")

WARN_WITHIN = timedelta(days=45)


def calendar_horizon(calendar: WorkingCalendar, today: date | None = None) -> float:
    """Unix time of 24:00 local of the last covered day; 0 when today is not covered."""
    today = today or datetime.now(calendar.zone).date()
    last = calendar.covered_until(today)
    if last is None:
        return 0.0
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=calendar.zone)
    return end.astimezone(UTC).timestamp()


def warn_if_calendar_ends_soon(calendar: WorkingCalendar, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    horizon = calendar_horizon(calendar, now.astimezone(calendar.zone).date())
    left = timedelta(seconds=horizon - now.timestamp())
    if left > WARN_WITHIN:
        return False
    log.warning(
        "calendar_ends_soon",
        covered_until=datetime.fromtimestamp(horizon, UTC).isoformat(),
        days_left=left.days,
        fix="declare next year's holidays and working days in calendar.yaml (declared_years)"
        " or upgrade the holiday package",
    )
    return True
