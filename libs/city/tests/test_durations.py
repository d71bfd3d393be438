"""Durations as written in sla.yaml."""

from __future__ import annotations

from datetime import timedelta

import pytest

from civicgrid.city import Duration, parse_duration


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("30m", 30), ("1h", 60), ("24h", 1440), ("2d", 2880), ("0m", 0)],
)
def test_calendar_durations_become_minutes(text: str, minutes: int) -> None:
    duration = parse_duration(text)
    assert duration.minutes == minutes
    assert duration.working_days is None
    assert duration.as_timedelta() == timedelta(minutes=minutes)


def test_working_days_stay_working_days() -> None:
    duration = parse_duration("5wd")
    assert duration == Duration(amount=5, unit="working_days")
    assert duration.is_working_days
    assert duration.minutes is None
    with pytest.raises(ValueError, match="working days"):
        duration.as_timedelta()


@pytest.mark.parametrize("text", ["30m", "1h", "25h", "5wd", "90m"])
def test_a_duration_prints_back_as_it_parses(text: str) -> None:
    assert parse_duration(str(parse_duration(text))) == parse_duration(text)


@pytest.mark.parametrize("text", ["", "30", "1.5h", "-1h", "1 week", "h", "5 wd"])
def test_text_without_a_whole_number_and_unit_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
