"""Working days used up between two moments: the inverse of the legal counting rule that sla's
deadlines follow (its own tests: services/sla/tests/unit/test_calendar.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from civicgrid.city.workcalendar import CalendarNotCovered, WorkingCalendar, build_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return build_calendar("Asia/Shanghai", "chinese-calendar")


def test_a_weekend_and_qingming_are_not_counted(calendar: WorkingCalendar) -> None:
    # Thu 2 Apr 2026 10:00 -> Tue 7 Apr 18:00. The 2nd is the start day (not counted); Fri 3rd
    # counts whole; Sat 4th, Sun 5th and Mon 6th (Qingming) not at all; Tue 7th 18 of 24 hours.
    assert calendar.working_days_elapsed(local(2026, 4, 2, 10), local(2026, 4, 7, 18)) == 1.75


def test_it_inverts_the_deadline_rule(calendar: WorkingCalendar) -> None:
    for start in (local(2026, 9, 24, 10), local(2026, 4, 3, 23, 59), local(2026, 10, 3, 9)):
        for days in (1, 3, 5):
            due = calendar.add_working_days(start, days)
            assert calendar.working_days_elapsed(start, due) == days, (start, days)
            before = calendar.working_days_elapsed(start, due - timedelta(hours=6))
            assert before == days - 0.25, (start, days)


def test_the_start_day_and_days_off_count_nothing(calendar: WorkingCalendar) -> None:
    assert calendar.working_days_elapsed(local(2026, 6, 2, 9), local(2026, 6, 2, 23)) == 0.0
    assert calendar.working_days_elapsed(local(2026, 6, 2, 9), local(2026, 6, 1, 23)) == 0.0
    # Fri 15:00 -> Sun 20:00: nothing after the start day is a working day yet.
    assert calendar.working_days_elapsed(local(2026, 6, 5, 15), local(2026, 6, 7, 20)) == 0.0
    # A make-up working Sunday (20 Sep 2026) counts.
    assert calendar.is_working_day(date(2026, 9, 20))
    assert calendar.working_days_elapsed(local(2026, 9, 18, 15), local(2026, 9, 20, 12)) == 0.5


def test_local_extra_holidays_apply(calendar: WorkingCalendar) -> None:
    city = build_calendar("Asia/Shanghai", "chinese-calendar", extra_holidays=[date(2026, 4, 3)])
    assert city.working_days_elapsed(local(2026, 4, 2, 10), local(2026, 4, 7, 18)) == 0.75


def test_a_year_without_data_is_a_loud_error(calendar: WorkingCalendar) -> None:
    with pytest.raises(CalendarNotCovered, match="2027"):
        calendar.working_days_elapsed(local(2026, 12, 30, 12), local(2027, 1, 5, 12))
