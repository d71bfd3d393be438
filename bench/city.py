"""The city the benchmarks run: the shipped one, with a calendar that reaches ahead.

The benchmarks measure speed, not the calendar. From 1 January of a year the holiday data does
not cover yet, sla refuses to start on the shipped city (for an operator, the point), and
``make bench`` would stop there. So, like the tests (``tests.support.shipped_city``), the
services under the bench get a copy of the shipped city that declares fictional weekday-only
schedules for those years; the bench says which.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from civicgrid.city.loader import CALENDAR_FILE
from tests.support.shipped_city import SHIPPED, declaring_years, uncovered_years


def bench_city(directory: Path, today: date | None = None) -> Path:
    """A copy of the shipped city in ``directory``, covering this year and the next few."""
    missing = uncovered_years(SHIPPED / CALENDAR_FILE, today)
    if missing:
        years = ", ".join(str(year) for year in missing)
        print(f"(the shipped city, with fictional weekday-only calendars for {years})")
    return declaring_years(SHIPPED, directory / "city", missing)


def platform_env(ports: dict[str, int], api_key: str, directory: Path) -> dict[str, str]:
    """The environment of ``civicgrid up`` under the bench: the bench's city and ports, one
    replica each, whatever the caller's environment says."""
    env = {
        **os.environ,
        "CIVICGRID_DEV_API_KEY": api_key,
        "CIVICGRID_CONFIG": str(bench_city(directory)),
        **{f"CIVICGRID_{service.upper()}_PORT": str(port) for service, port in ports.items()},
    }
    env.pop("CIVICGRID_INSTANCES", None)
    return env
