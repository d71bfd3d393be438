"""For random event sequences, the SQL figures equal a plain-Python recount of the same facts.

The recount (tests.support.reporting.recount) restates every definition without SQL; the
facts come from folding the events in Python, independently of the database's fold.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from civicgrid.city.workcalendar import build_calendar
from civicgrid.events.incident_events import Channel, HandlingLevel, ReturnReason
from civicgrid.events.projector import ProjectedEvent
from civicgrid.reporting.durations import durations
from civicgrid.reporting.fact_store import FactStore
from civicgrid.reporting.facts import IncidentFact, project
from civicgrid.reporting.figures import Dimension, FigureRow, Period, figures
from tests.support.reporting.lives import Life
from tests.support.reporting.recount import recount, recount_durations

# Wed 1 April 2026: the lives run over the weekend and Qingming (Mon 6 April), so working-day
# durations skip days off.
START = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
NOW = START + timedelta(days=3)
CLOCKS = ("accept", "arrive", "resolve")
CALENDAR = build_calendar("Asia/Shanghai", "chinese-calendar")

step = st.one_of(
    st.tuples(st.just("assign"), st.sampled_from(list(HandlingLevel))),
    st.tuples(st.just("return"), st.sampled_from(list(ReturnReason))),
    st.tuples(st.sampled_from(["accept", "arrive", "resolve", "close", "reopen", "merge"])),
    st.tuples(st.sampled_from(["suspend", "resume", "close_merged"])),
    st.tuples(st.just("callback"), st.booleans()),
    st.tuples(st.just("escalate"), st.integers(1, 4)),
    st.tuples(
        st.sampled_from(["clock", "met", "met_on_time", "met_late", "cancel", "warn", "breach"]),
        st.sampled_from(CLOCKS),
        st.integers(-60, 3000),
        # The clock's duration as sla writes it; None as a producer before the field.
        st.sampled_from([None, "30m", "24h", "1wd", "5wd"]),
    ),
    st.tuples(st.just("extend"), st.sampled_from(CLOCKS), st.integers(0, 9000)),
)

incident = st.tuples(
    st.sampled_from(["c01", "c02", "c03"]),
    st.sampled_from(["city-appearance.illegal-parking", "roads.pothole", "water.leak"]),
    st.sampled_from([Channel.CITIZEN_APP, Channel.HOTLINE_12345]),
    st.integers(0, 4 * 24 * 60),  # report minute: spans local days
    st.lists(st.tuples(step, st.integers(1, 600)), max_size=12),
    # Most lives start a resolve clock at once and end resolved, so durations have samples.
    st.sampled_from([None, "24h", "1wd", "5wd"]),
    st.tuples(st.sampled_from(["open", "resolve", "close"]), st.integers(1, 9000)),
)


def build_life(number: int, plan: tuple[object, ...]) -> Life:
    community, matter, channel, offset, steps, resolve_clock, ending = plan
    assert isinstance(offset, int) and isinstance(steps, list) and isinstance(ending, tuple)
    life = Life(
        f"r{number}",
        START + timedelta(minutes=offset),
        community=str(community),
        grid=f"{community}-g00{number % 3}",
        matter=str(matter),
        channel=Channel(channel),
    )
    life.report()
    if resolve_clock is not None:
        life.clock(0, "resolve", 1440, duration=str(resolve_clock))
    minute = 0
    for action, gap in steps:
        minute += gap
        kind = action[0]
        started = len(action) > 1 and action[1] in life.clock_versions
        if kind == "assign":
            life.assign(minute, action[1])
        elif kind == "return":
            life.give_back(minute, action[1])
        elif kind in ("accept", "arrive", "resolve", "close", "reopen", "merge", "suspend"):
            getattr(life, {"return": "give_back"}.get(kind, kind))(minute)
        elif kind == "resume":
            life.resume(minute)
        elif kind == "close_merged":
            life.close(minute, merged_into="r0")
        elif kind == "callback":
            life.callback(minute, satisfied=action[1])
        elif kind == "escalate":
            life.escalate(minute, action[1])
        elif kind == "clock":
            life.clock(minute, action[1], minute + action[2], duration=action[3])
        elif kind == "extend":
            life.extend(minute, action[1], action[2])
        elif started and kind == "met":
            life.met(minute, action[1])
        elif started and kind == "met_on_time":
            life.met(minute, action[1], on_time=True)
        elif started and kind == "met_late":
            life.met(minute, action[1], on_time=False)
        elif started and kind == "cancel":
            life.cancel_clock(minute, action[1])
        elif started and kind == "warn":
            life.warn(minute, action[1], minute + action[2])
        elif started and kind == "breach":
            life.breach(minute, action[1], minute)
    end, gap = ending
    if end in ("resolve", "close"):
        life.resolve(minute + gap)
    if end == "close":
        life.close(minute + gap + 30)
    return life


def as_sql_table(rows: list[FigureRow]) -> dict[str | None, dict[str, object]]:
    return {row.key: {**row.counts, **row.ratios} for row in rows}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=st.lists(incident, min_size=1, max_size=15), data=st.data())
def test_sql_figures_equal_a_plain_python_recount(
    backend: str,
    plans: list[tuple[object, ...]],
    data: st.DataObject,
    make_engine: Callable[[str], Engine],
) -> None:
    lives = [build_life(i, plan) for i, plan in enumerate(plans)]
    events = [event for life in lives for event in life.events]
    numbered = [
        ProjectedEvent(i, f"incident.{e.incident_id}.{e.event_type}", e)
        for i, e in enumerate(events, start=1)
    ]
    engine = make_engine(backend)
    try:
        store = FactStore(engine)
        # Applied in random batch sizes, some batches twice: the result must not depend on it.
        position = 0
        while position < len(numbered):
            size = data.draw(st.integers(1, 20))
            batch = numbered[position : position + size]
            store.apply(batch, after=position, position=position + len(batch))
            if data.draw(st.booleans()):
                store.apply(batch, after=position + len(batch), position=position + len(batch))
            position += len(batch)
        facts: dict[str, IncidentFact] = {}
        for item in numbered:
            folded = project(facts.get(item.event.incident_id), item.event, item.sequence)
            if folded is not None:
                facts[folded.incident_id] = folded
        period = Period(date(2026, 4, 1), date(2026, 4, 3))
        in_period = [
            fact
            for fact in facts.values()
            if fact.reported_day is not None and "2026-04-01" <= fact.reported_day <= "2026-04-03"
        ]
        for dimension in (Dimension.COMMUNITY, Dimension.DAY, Dimension.UNIT, Dimension.CITY):
            with engine.connect() as connection:
                sql = as_sql_table(figures(connection, dimension, period, NOW))
            assert sql == recount(in_period, dimension, NOW), dimension
        for dimension in (Dimension.COMMUNITY, Dimension.DAY):
            spans = durations(engine, dimension, period, CALENDAR)
            assert spans == recount_durations(in_period, dimension, CALENDAR), dimension
    finally:
        engine.dispose()
