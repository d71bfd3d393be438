"""`make bench` keeps working on New Year's Day: the services it starts get a city whose
calendar reaches this year, whatever the caller's environment says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.city import platform_env
from civicgrid.city.loader import CALENDAR_FILE
from civicgrid.sla.config import load_sla_config
from tests.support.shipped_city import SHIPPED, uncovered_years


def test_sla_starts_on_the_bench_city_in_a_year_the_holiday_data_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIVICGRID_CONFIG", str(tmp_path / "somewhere-else"))
    monkeypatch.setenv("CIVICGRID_INSTANCES", "2")
    env = platform_env({"intake": 18081, "sla": 18083}, "key", tmp_path)
    year = uncovered_years(SHIPPED / CALENDAR_FILE)[0]
    new_year = datetime(year, 1, 2, 9, tzinfo=UTC)
    with pytest.raises(Exception, match=str(year)):
        load_sla_config(SHIPPED, now=new_year)
    city = Path(env["CIVICGRID_CONFIG"])
    assert city.parent == tmp_path
    load_sla_config(city, now=new_year).calendar.check_covers([year])  # raises if not
    assert (env["CIVICGRID_INTAKE_PORT"], env["CIVICGRID_SLA_PORT"]) == ("18081", "18083")
    assert env["CIVICGRID_DEV_API_KEY"] == "key" and "CIVICGRID_INSTANCES" not in env
