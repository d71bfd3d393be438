"""The legal counting rule: the start day does not count; the period ends at 24:00 local of the
N-th working day after it. Working days: chinese-calendar plus calendar.yaml overrides."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from civicgrid.city.workcalendar import CalendarNotCovered, DeclaredSchedule, build_calendar
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
    from tests.support.shipped_city import SHIPPED

    assert load_sla_config(SHIPPED, now=datetime(2026, 11, 30, tzinfo=UTC)).calendar
    with pytest.raises(CalendarNotCovered, match="2027"):
        load_sla_config(SHIPPED, now=datetime(2027, 1, 2, tzinfo=UTC))


# A made-up schedule for 2027, as an operator would declare it from the State Council's notice
# before the packages carry it (the real one is not published in this repository's data).
DECLARED_2027 = DeclaredSchedule(
    holidays=frozenset({date(2027, 1, 1), date(2027, 1, 4)}),
    working_days=frozenset({date(2027, 1, 9)}),
)


def test_a_declared_year_is_covered_with_its_holidays_and_make_up_days() -> None:
    calendar = build_calendar("Asia/Shanghai", "chinese-calendar", declared={2027: DECLARED_2027})
    assert not calendar.is_working_day(date(2027, 1, 4))  # a Monday off
    assert calendar.is_working_day(date(2027, 1, 9))  # a Saturday worked
    assert not calendar.is_working_day(date(2027, 1, 10))  # a Sunday
    # Wed Dec 30 2026 + 5: Dec 31, Jan 5, 6, 7, 8 (Jan 1 and 4 off; the weekend between).
    assert calendar.add_working_days(local(2026, 12, 30, 12, 0), 5) == local(2027, 1, 9, 0, 0)
    # The package still answers for 2026, and 2028 is still not covered.
    assert calendar.is_working_day(date(2026, 9, 20))
    with pytest.raises(CalendarNotCovered, match="2028"):
        calendar.check_covers([2028])


def test_covered_until_is_the_end_of_the_last_covered_year() -> None:
    plain = build_calendar("Asia/Shanghai", "chinese-calendar")
    assert plain.covered_until(date(2026, 11, 30)) == date(2026, 12, 31)
    assert plain.covered_until(date(2027, 1, 1)) is None
    declared = build_calendar("Asia/Shanghai", "chinese-calendar", declared={2027: DECLARED_2027})
    assert declared.covered_until(date(2026, 11, 30)) == date(2027, 12, 31)


def test_the_holidays_package_agrees_with_chinese_calendar_on_every_day_of_2026(
    calendar,  # type: ignore[no-untyped-def]
) -> None:
    other = build_calendar("Asia/Shanghai", "holidays")
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    differ = [d for d in days if other.is_working_day(d) != calendar.is_working_day(d)]
    assert differ == []
    assert other.is_working_day(date(2026, 1, 4))  # a make-up Sunday


def test_the_holidays_package_does_not_guess_a_year_without_its_official_notice() -> None:
    other = build_calendar("Asia/Shanghai", "holidays")
    with pytest.raises(CalendarNotCovered, match="2027"):
        other.is_working_day(date(2027, 3, 1))


def _city_with_calendar(tmp_path: Path, extra: str) -> Path:
    from tests.support.shipped_city import SHIPPED

    city = tmp_path / "city"
    shutil.copytree(SHIPPED, city)
    shipped = (city / "calendar.yaml").read_text(encoding="utf-8")
    assert "declared_years: {}\n" in shipped
    (city / "calendar.yaml").write_text(
        shipped.replace("declared_years: {}\n", extra), encoding="utf-8"
    )
    return city


def test_a_year_declared_in_calendar_yaml_lets_the_service_start_in_it(tmp_path: Path) -> None:
    from civicgrid.sla.config import load_sla_config

    city = _city_with_calendar(
        tmp_path,
        "declared_years:\n  2027:\n    holidays: [2027-01-01, 2027-01-04]\n"
        "    working_days: [2027-01-09]\n",
    )
    config = load_sla_config(city, now=datetime(2027, 1, 2, tzinfo=UTC))
    assert config.calendar.is_working_day(date(2027, 1, 9))
    assert not config.calendar.is_working_day(date(2027, 1, 4))


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("declared_years:\n  2027:\n    holidays: [2026-12-31]\n", "another year"),
        (
            "declared_years:\n  2027:\n    holidays: []\n    working_days: [2027-01-05]\n",
            "weekdays",
        ),
        (
            "declared_years:\n  2027:\n    holidays: [2027-01-09]\n"
            "    working_days: [2027-01-09]\n",
            "both",
        ),
    ],
)
def test_a_declared_year_that_contradicts_itself_is_refused(
    tmp_path: Path, extra: str, reason: str
) -> None:
    from civicgrid.city import load_city

    with pytest.raises(ValueError, match=reason):
        load_city(_city_with_calendar(tmp_path, extra))


def test_the_horizon_metric_and_warning_see_the_year_end_coming(calendar) -> None:  # type: ignore[no-untyped-def]
    from civicgrid.sla.calendar_horizon import calendar_horizon, warn_if_calendar_ends_soon

    assert calendar_horizon(calendar, date(2026, 11, 30)) == local(2027, 1, 1).timestamp()
    assert calendar_horizon(calendar, date(2027, 1, 1)) == 0.0
    assert warn_if_calendar_ends_soon(calendar, datetime(2026, 11, 30, tzinfo=UTC))
    assert not warn_if_calendar_ends_soon(calendar, datetime(2026, 6, 1, tzinfo=UTC))
    declared = build_calendar("Asia/Shanghai", "chinese-calendar", declared={2027: DECLARED_2027})
    assert not warn_if_calendar_ends_soon(declared, datetime(2026, 11, 30, tzinfo=UTC))
