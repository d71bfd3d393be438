"""The tests' copy of the shipped city: only the years the holiday data lacks are added."""

from __future__ import annotations

import filecmp
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from civicgrid.city.loader import CALENDAR_FILE
from civicgrid.sla.config import load_sla_config
from tests.support.shipped_city import SHIPPED, covering_the_coming_years, uncovered_years


def test_the_copy_declares_only_the_uncovered_years_and_changes_nothing_else(
    tmp_path: Path,
) -> None:
    # 2025 and 2026 are in the shipped holiday data; 2027 and later are not (as of writing).
    today = date(2025, 6, 1)
    missing = uncovered_years(SHIPPED / CALENDAR_FILE, today)
    assert 2025 not in missing and 2026 not in missing
    assert missing, "the holiday data covers the next years: this test needs a later `today`"
    copy = covering_the_coming_years(SHIPPED, tmp_path / "city", today)
    assert uncovered_years(copy / CALENDAR_FILE, today) == []
    others = sorted(p.name for p in SHIPPED.iterdir() if p.is_file() and p.name != CALENDAR_FILE)
    _, mismatch, errors = filecmp.cmpfiles(SHIPPED, copy, others, shallow=False)
    assert mismatch == [] and errors == []
    declared = yaml.safe_load((copy / CALENDAR_FILE).read_text())["declared_years"]
    assert sorted(declared) == missing


def test_the_copy_lets_sla_start_in_a_year_the_holiday_data_lacks(tmp_path: Path) -> None:
    year = uncovered_years(SHIPPED / CALENDAR_FILE)[0]
    new_year = datetime(year, 1, 2, tzinfo=UTC)
    with pytest.raises(Exception, match=str(year)):
        load_sla_config(SHIPPED, now=new_year)
    copy = covering_the_coming_years(SHIPPED, tmp_path / "city", new_year.date())
    assert load_sla_config(copy, now=new_year).calendar.is_working_day(date(year, 1, 1))
