"""The legal working-day calendar (design section 5), shared: sla counts deadlines with it,
reporting measures how many working days a working-day clock's incident took.

A period of N working days starting at some moment: the start day does not count; the period
ends at 24:00 local time of the N-th working day after the start day. Working days are China's
(weekdays, minus public holidays, plus make-up working days 调休) from the holiday source, or
from a year's official schedule declared in calendar.yaml (for a year published before the
package caught up), with the city's local overrides on top. A day neither covers raises
``CalendarNotCovered``: the calendar never guesses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from civicgrid.city.models import CalendarConfig

IsWorkday = Callable[[date], bool]
"""The holiday source's answer for one day; raises CalendarNotCovered for a day it lacks."""

MAX_WORKING_DAYS = 366


class CountedDuration(Protocol):
    """A duration either of wall time or of working days (sla's SlaDuration is one)."""

    @property
    def is_working_days(self) -> bool: ...

    @property
    def working_days(self) -> int: ...

    def as_timedelta(self) -> timedelta: ...


class CalendarNotCovered(Exception):
    """The holiday data does not cover a day a deadline needs."""


def chinese_calendar_source() -> IsWorkday:
    import chinese_calendar

    def is_workday(day: date) -> bool:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError as exc:
            raise CalendarNotCovered(
                f"the chinese-calendar package has no holiday data for {day.year}: upgrade it,"
                " or list that year's holidays and working days in calendar.yaml"
            ) from exc

    return is_workday


def holidays_source() -> IsWorkday:
    """The ``holidays`` package, fenced to the years it has the official notice for.

    Its China class computes any year's festivals by rule, but only the years listed in its
    static data carry the official substitutions (the days off moved and the make-up working
    weekend days); a year without them would be a guess, so it is not covered.
    """
    from holidays.countries.china import China, ChinaStaticHolidays

    notices: dict[int, tuple[object, ...]] = dict(ChinaStaticHolidays.special_public_holidays)
    make_up: set[date] = set()
    for year, moves in notices.items():
        for move in moves:
            # (month, day off, month, the weekend day worked instead)
            if isinstance(move, tuple) and len(move) == 4:
                make_up.add(date(year, move[2], move[3]))
    years: dict[int, China] = {}

    def is_workday(day: date) -> bool:
        if day.year not in notices:
            raise CalendarNotCovered(
                f"the holidays package has no official schedule for {day.year}: upgrade it,"
                " or declare that year's holidays and working days in calendar.yaml"
            )
        if day in make_up:
            return True
        if day.year not in years:
            years[day.year] = China(years=day.year)  # type: ignore[no-untyped-call]
        return day.weekday() < 5 and day not in years[day.year]

    return is_workday


SOURCES: dict[str, Callable[[], IsWorkday]] = {
    "chinese-calendar": chinese_calendar_source,
    "holidays": holidays_source,
}


@dataclass(frozen=True)
class DeclaredSchedule:
    """A year's official schedule from calendar.yaml: weekdays work, except the holidays."""

    holidays: frozenset[date]
    working_days: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        if day in self.working_days:
            return True
        return day.weekday() < 5 and day not in self.holidays


@dataclass(frozen=True)
class WorkingCalendar:
    zone: ZoneInfo
    source: IsWorkday
    extra_holidays: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()
    declared: Mapping[int, DeclaredSchedule] = field(default_factory=dict)
    _cache: dict[date, bool] = field(default_factory=dict, compare=False, repr=False)

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_holidays:
            return False
        if day in self.extra_working_days:
            return True
        known = self._cache.get(day)
        if known is None:
            schedule = self.declared.get(day.year)
            known = schedule.is_working_day(day) if schedule is not None else self.source(day)
            self._cache[day] = known
        return known

    def covered_until(self, today: date, *, horizon_years: int = 5) -> date | None:
        """The last day of the unbroken run of covered years from today's (None: not even it)."""
        last: date | None = None
        for year in range(today.year, today.year + horizon_years + 1):
            try:
                self.check_covers([year])
            except CalendarNotCovered:
                break
            last = date(year, 12, 31)
        return last

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """24:00 local of the ``days``-th working day after the start's local day, as UTC."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if not 0 < days <= MAX_WORKING_DAYS:
            raise ValueError(f"working days must be between 1 and {MAX_WORKING_DAYS}")
        day = start.astimezone(self.zone).date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
        return end.astimezone(UTC)

    def working_days_elapsed(self, start: datetime, end: datetime) -> float:
        """Working days of a period started at ``start`` used up at ``end``, counted the way
        ``add_working_days`` counts them: the start's local day does not count, each working
        day after it counts from 00:00 to 24:00 local (a part of one pro rata), other days not
        at all. So ``working_days_elapsed(s, add_working_days(s, n)) == n``; an end on the
        start's own day, or before the start, is 0.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        first = start.astimezone(self.zone).date() + timedelta(days=1)
        local_end = end.astimezone(self.zone)
        last = local_end.date()
        if last < first:
            return 0.0
        whole = sum(1 for _ in self.working_days(first, last - timedelta(days=1)))
        if not self.is_working_day(last):
            return float(whole)
        midnight = datetime.combine(last, time(0), tzinfo=self.zone)
        following = datetime.combine(last + timedelta(days=1), time(0), tzinfo=self.zone)
        # In UTC: a day with a daylight-saving change is not 24 hours long.
        part = (end - midnight.astimezone(UTC)) / (following - midnight)
        return whole + part

    def due(self, start: datetime, duration: CountedDuration) -> datetime:
        if duration.is_working_days:
            return self.add_working_days(start, duration.working_days)
        return (start + duration.as_timedelta()).astimezone(UTC)

    def working_days(self, first: date, last: date) -> Iterator[date]:
        day = first
        while day <= last:
            if self.is_working_day(day):
                yield day
            day += timedelta(days=1)

    def check_covers(self, years: Iterable[int]) -> None:
        """At start: fail loudly if a year the service will count in is not covered."""
        for year in years:
            self.is_working_day(date(year, 1, 1))
            self.is_working_day(date(year, 12, 31))


def calendar_from_config(config: CalendarConfig) -> WorkingCalendar:
    """The calendar a city's calendar.yaml describes."""
    return build_calendar(
        config.timezone,
        config.holiday_source,
        config.extra_holidays,
        config.extra_working_days,
        {
            year: DeclaredSchedule(frozenset(declared.holidays), frozenset(declared.working_days))
            for year, declared in config.declared_years.items()
        },
    )


def build_calendar(
    timezone: str,
    holiday_source: str,
    extra_holidays: Iterable[date] = (),
    extra_working_days: Iterable[date] = (),
    declared: Mapping[int, DeclaredSchedule] | None = None,
) -> WorkingCalendar:
    return WorkingCalendar(
        zone=ZoneInfo(timezone),
        source=SOURCES[holiday_source](),
        extra_holidays=frozenset(extra_holidays),
        extra_working_days=frozenset(extra_working_days),
        declared=dict(declared or {}),
    )
