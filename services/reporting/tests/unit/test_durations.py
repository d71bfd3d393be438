"""Median and p90 durations: wall-time clocks in minutes, working-day clocks in working days by
the city's calendar. Hand-computed around Qingming 2026 (Sat 4 - Mon 6 April off), on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from civicgrid.city.workcalendar import build_calendar
from civicgrid.events.base import IncidentEvent
from civicgrid.events.projector import ProjectedEvent
from civicgrid.reporting.durations import SpanFigures, Spread, as_rows, durations
from civicgrid.reporting.fact_store import FactStore
from civicgrid.reporting.figures import Dimension, Period
from tests.support.reporting.lives import Life

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = build_calendar("Asia/Shanghai", "chinese-calendar")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


def minutes(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60


def difficult(name: str, reported: datetime, resolved: datetime, closed: datetime | None) -> Life:
    life = Life(name, reported).report().assign(1)
    life.clock(1, "accept", 31, duration="30m").clock(1, "resolve", 9000, duration="5wd")
    life.resolve(minutes(reported, resolved))
    return life.close(minutes(reported, closed)) if closed else life


def lives() -> list[Life]:
    return [
        # Thu 2 Apr 10:00 -> Tue 7 Apr 18:00: Fri 3rd whole, the 4th-6th off, 18/24 of the 7th.
        difficult("d1", local(2026, 4, 2, 10), local(2026, 4, 7, 18), local(2026, 4, 8, 12)).accept(
            21
        ),  # 20 minutes after the assignment, on a 30m clock
        # Fri 3 Apr 16:00 -> Wed 8 Apr 06:00: the 7th whole, 6/24 of the 8th.
        difficult("d2", local(2026, 4, 3, 16), local(2026, 4, 8, 6), None),
        # Wed 1 Apr 09:00 -> Fri 10 Apr 12:00: 2nd, 3rd, 7th, 8th, 9th whole, half the 10th;
        # closed at 18:00 of the 10th: three quarters of it.
        difficult("d3", local(2026, 4, 1, 9), local(2026, 4, 10, 12), local(2026, 4, 10, 18)),
        # A 24h clock: wall time, over the same weekend.
        Life("s1", local(2026, 4, 2, 10))
        .report()
        .assign(1)
        .clock(1, "resolve", 1441, duration="24h")
        .resolve(1440)
        .close(1500),
        # A clock from a producer that did not record its duration: wall time.
        Life("s2", local(2026, 4, 3, 9)).report().assign(1).clock(1, "resolve", 1441).resolve(600),
        # Into 2027, which the holiday data does not cover: counted as not covered, not guessed.
        difficult("y1", local(2026, 12, 30, 12), local(2027, 1, 4, 12), None),
    ]


def project(engine: Engine, events: list[IncidentEvent]) -> None:
    numbered = [
        ProjectedEvent(i, f"incident.{e.incident_id}.{e.event_type}", e)
        for i, e in enumerate(events, start=1)
    ]
    FactStore(engine).apply(numbered, after=0, position=len(numbered))


def test_each_span_in_its_clocks_unit_by_hand(engine: Engine) -> None:
    project(engine, [event for life in lives() for event in life.events])
    (community,) = durations(engine, Dimension.COMMUNITY, Period(), CALENDAR).items()
    key, spans = community
    assert key == "c01"
    assert spans["resolve"] == SpanFigures(
        minutes=Spread(2, (600 + 1440) / 2, 1440.0),  # s2, s1
        working_days=Spread(3, 1.75, 5.5),  # d2 1.25, d1 1.75, d3 5.5
        not_covered=1,  # y1
    )
    assert spans["close"] == SpanFigures(
        minutes=Spread(1, 1500.0, 1500.0),  # s1
        # d1: 3rd, 7th whole, half the 8th = 2.5; d3: 5.75
        working_days=Spread(2, (2.5 + 5.75) / 2, 5.75),
    )
    # Accept runs on a 30m clock for every difficult matter: minutes, d1's 20 only.
    assert spans["accept"] == SpanFigures(
        minutes=Spread(1, 20.0, 20.0), working_days=Spread(0, None, None)
    )
    (row,) = as_rows({key: spans})
    assert row["resolve"] == {
        "count": 2,
        "median_minutes": 1020.0,
        "p90_minutes": 1440.0,
        "working_count": 3,
        "median_working_days": 1.75,
        "p90_working_days": 5.5,
        "not_covered": 1,
    }


def test_a_period_and_a_dimension_select_as_the_figures_do(engine: Engine) -> None:
    project(engine, [event for life in lives() for event in life.events])
    table = durations(engine, Dimension.DAY, Period(None, None), CALENDAR)
    assert sorted(k or "" for k in table) == [
        "2026-04-01",
        "2026-04-02",
        "2026-04-03",
        "2026-12-30",
    ]
    only_the_2nd = durations(
        engine, Dimension.CITY, Period(local(2026, 4, 2).date(), local(2026, 4, 2).date()), CALENDAR
    )
    resolve = only_the_2nd["city"]["resolve"]
    assert (resolve.minutes.count, resolve.working_days.count) == (1, 1)  # s1, d1
    assert resolve.working_days.median == 1.75
