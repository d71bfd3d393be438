"""The legal counting rule: the start day does not count; the period ends at 24:00 local of the
N-th working day after it. Working days: chinese-calendar plus calendar.yaml overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from civicgrid.city.workcalendar import CalendarNotCovered, build_calendar
from civicgrid.sla.domain.durations import SlaDuration, parse_sla_duration

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.fixture(scope="module")
def calendar():  # type: ignore[no-untyped-def]
    return build_calendar("Asia/Shanghai", "chinese-calendar")


def test_the_design_national_day_example(calendar) -> None:  # type: ignore[no-untyped-def]
    due = calendar.add_working_days(local(2026, 9, 24, 10, 0), 5)
    assert due == local(2026, 10, 10, 0, 0)
    assert due.tzinfo is UTC
    assert due.isoformat() == "2026-10-09T16:00:00+00:00"


def test_a_make_up_working_sunday_counts(calendar) -> None:  # type: ignore[no-untyped-def]
    # 2026-09-20 is a Sunday worked in exchange for the Mid-Autumn / National Day break.
    assert calendar.is_working_day(date(2026, 9, 20))
    # Friday 18th + 1 working day: the Sunday 20th is it, ending at Monday 00:00.
    assert calendar.add_working_days(local(2026, 9, 18, 15, 0), 1) == local(2026, 9, 21, 0, 0)


def test_a_start_inside_a_holiday_counts_from_the_next_working_day(calendar) -> None:  # type: ignore[no-untyped-def]
    # Oct 3 (holiday): working days Oct 8, 9, 10 (a make-up Saturday) -> end of Oct 10.
    assert calendar.add_working_days(local(2026, 10, 3, 9, 0), 3) == local(2026, 10, 11, 0, 0)


def test_a_start_at_2359_and_at_0000_both_leave_the_start_day_out(calendar) -> None:  # type: ignore[no-untyped-def]
    assert calendar.add_working_days(local(2026, 6, 2, 23, 59), 1) == local(2026, 6, 4, 0, 0)
    assert calendar.add_working_days(local(2026, 6, 2, 0, 0), 1) == local(2026, 6, 4, 0, 0)
    # 00:00 of the 3rd belongs to the 3rd: it is the start day and does not count.
    assert calendar.add_working_days(local(2026, 6, 3, 0, 0), 1) == local(2026, 6, 5, 0, 0)


def test_a_year_boundary_the_data_covers(calendar) -> None:  # type: ignore[no-untyped-def]
    # Dec 31 2025 (Wed) + 2: Jan 1-3 2026 are New Year holidays, Jan 4 a make-up Sunday, Jan 5.
    assert calendar.add_working_days(local(2025, 12, 31, 12, 0), 2) == local(2026, 1, 6, 0, 0)


def test_a_year_the_data_does_not_cover_is_a_loud_error(calendar) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CalendarNotCovered, match="2027"):
        calendar.add_working_days(local(2026, 12, 30, 12, 0), 5)
    with pytest.raises(CalendarNotCovered):
        calendar.check_covers([2027])


def test_local_overrides_win_over_the_package() -> None:
    calendar = build_calendar(
        "Asia/Shanghai",
        "chinese-calendar",
        extra_holidays=[date(2026, 6, 3)],
        extra_working_days=[date(2026, 6, 6)],
    )
    assert not calendar.is_working_day(date(2026, 6, 3))
    assert calendar.is_working_day(date(2026, 6, 6))
    # Jun 2 + 3: Jun 4, 5, 6 (the overridden Saturday).
    assert calendar.add_working_days(local(2026, 6, 2, 10, 0), 3) == local(2026, 6, 7, 0, 0)


def test_wall_time_durations_ignore_the_calendar(calendar) -> None:  # type: ignore[no-untyped-def]
    start = local(2026, 10, 1, 10, 0)
    assert calendar.due(start, parse_sla_duration("24h")) == local(2026, 10, 2, 10, 0)
    assert calendar.due(start, parse_sla_duration("30m")) == local(2026, 10, 1, 10, 30)


@pytest.mark.parametrize(
    ("text", "expected", "printed"),
    [
        ("30m", SlaDuration(seconds=1800), "30m"),
        ("24h", SlaDuration(seconds=86400), "24h"),
        ("2d", SlaDuration(seconds=172800), "48h"),
        ("5wd", SlaDuration(working_days=5), "5wd"),
        ("3s", SlaDuration(seconds=3), "3s"),
    ],
)
def test_durations_parse_and_print_back(text: str, expected: SlaDuration, printed: str) -> None:
    assert parse_sla_duration(text) == expected
    assert str(parse_sla_duration(text)) == printed
    assert parse_sla_duration(printed) == expected


@pytest.mark.parametrize("text", ["", "5", "5 wd", "1.5h", "-3m", "5w"])
def test_bad_durations_are_refused_with_the_rule(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_sla_duration(text)


def test_the_service_refuses_to_start_in_a_year_the_calendar_does_not_cover() -> None:
    from civicgrid.sla.config import load_sla_config

    assert load_sla_config(None, now=datetime(2026, 11, 30, tzinfo=UTC)).calendar
    with pytest.raises(CalendarNotCovered, match="2027"):
        load_sla_config(None, now=datetime(2027, 1, 2, tzinfo=UTC))
