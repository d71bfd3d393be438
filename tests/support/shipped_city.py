"""The shipped city as the tests start it: the same files, with a calendar that reaches ahead.

Tests run at today's date. Each year, from late December until the holiday package (or the
city's calendar.yaml) carries the next year's official schedule, working-day deadlines across
the year end dead-letter, and from 1 January the sla service refuses to start on the shipped
city. For an operator that is the point (an error at start, never a guess); for a test of
anything else it is a false failure on a date. So the tests' copy declares fictional
weekday-only schedules for the years the holiday data does not cover yet, as the sla
integration tests do (``tests.support.sla.beyond_the_holiday_data``). The calendar rule itself
is tested on fixed dates; these years say nothing about real holidays.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import yaml

from civicgrid.city.loader import CALENDAR_FILE
from civicgrid.city.models import CalendarConfig
from civicgrid.city.workcalendar import CalendarNotCovered, calendar_from_config

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "longgang"
SHIPPED_FAST = REPO / "config" / "longgang-fast"
YEARS_AHEAD = 3


def uncovered_years(calendar_file: Path, today: date | None = None) -> list[int]:
    """This year and the next ``YEARS_AHEAD`` that the city's calendar cannot count in."""
    config = CalendarConfig.model_validate(yaml.safe_load(calendar_file.read_text("utf-8")))
    calendar = calendar_from_config(config)
    today = today or datetime.now(config.zone).date()
    missing = []
    for year in range(today.year, today.year + YEARS_AHEAD + 1):
        try:
            calendar.check_covers([year])
        except CalendarNotCovered:
            missing.append(year)
    return missing


def covering_the_coming_years(city: Path, into: Path, today: date | None = None) -> Path:
    """A copy of ``city`` whose calendar.yaml declares the years it does not cover yet."""
    return declaring_years(city, into, uncovered_years(city / CALENDAR_FILE, today))


def declaring_years(city: Path, into: Path, missing: list[int]) -> Path:
    """A copy of ``city`` whose calendar.yaml declares ``missing`` as weekday-only years."""
    shutil.copytree(city, into)
    calendar_file = into / CALENDAR_FILE
    if missing:
        document = yaml.safe_load(calendar_file.read_text("utf-8"))
        declared = document.get("declared_years") or {}
        for year in missing:
            declared[year] = {"holidays": [], "working_days": []}
        document["declared_years"] = declared
        calendar_file.write_text(yaml.safe_dump(document, sort_keys=False), "utf-8")
    return into
