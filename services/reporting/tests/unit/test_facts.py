from __future__ import annotations

from datetime import UTC, datetime

from civicgrid.events.base import UnitKind, UnitRef
from civicgrid.events.incident_events import HandlingLevel, ReturnReason, SlaClassOrdered
from civicgrid.reporting.facts import IncidentFact, project
from tests.support.reporting.lives import Life

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def fold(life: Life) -> IncidentFact:
    fact: IncidentFact | None = None
    for sequence, event in enumerate(life.events, start=1):
        fact = project(fact, event, sequence) or fact
    assert fact is not None
    return fact


def test_a_resolved_incident_has_its_lifecycle_times_and_place() -> None:
    life = Life("i1", START, community="c02", grid="c02-g003").report().assign(1)
    life.accept(5).arrive(20).resolve(60).callback(70, satisfied=True, rating=4).close(90)
    fact = fold(life)
    assert (fact.community_id, fact.grid_id, fact.micro_grid_id) == (
        "c02",
        "c02-g003",
        "c02-g003-m01",
    )
    assert fact.reported_at == START
    assert fact.reported_day == "2026-03-02"  # 09:00 in Shanghai
    assert fact.accepted_at == life.at(5)
    assert fact.arrived_at == life.at(20)
    assert fact.resolved_at == life.at(60)
    assert fact.closed_at == life.at(90)
    assert fact.resolved_level == "grid"
    assert (fact.satisfied, fact.rating, fact.callbacks) == (True, 4, 1)
    assert fact.matter_group == "city-appearance"
    assert fact.last_sequence == len(life.events)


def test_the_local_day_follows_the_city_zone_not_utc() -> None:
    late = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)  # 01:30 on the 3rd in Shanghai
    assert fold(Life("i1", late).report()).reported_day == "2026-03-03"


def test_an_event_at_or_below_the_rows_sequence_changes_nothing() -> None:
    life = Life("i1", START).report().assign(1).accept(5)
    fact = fold(life)
    assert project(fact, life.events[2], 3) is None
    assert project(fact, life.events[1], 2) is None
    assert project(fact, life.events[2], 4) is not None


def test_returns_count_by_reason_and_a_department_assignment_is_remembered() -> None:
    life = Life("i1", START).report().assign(1)
    life.give_back(10, ReturnReason.NOT_OUR_DUTY).assign(12, HandlingLevel.DEPARTMENT)
    life.give_back(20, ReturnReason.WRONG_JURISDICTION).assign(22, HandlingLevel.COMMUNITY)
    fact = fold(life.resolve(40))
    assert (fact.returns, fact.returns_not_our_duty, fact.returns_wrong_jurisdiction) == (2, 1, 1)
    assert fact.assignments == 3
    assert fact.reached_department is True
    assert fact.resolved_level == "community"
    assert fact.first_assigned_at == life.at(1)


def test_a_reopen_clears_resolution_and_close_until_resolved_again() -> None:
    life = Life("i1", START).report().assign(1).resolve(30).close(40).reopen(50)
    fact = fold(life)
    assert (fact.resolved_at, fact.closed_at, fact.reopens) == (None, None, 1)
    fact = fold(life.resolve(70).close(80))
    assert (fact.resolved_at, fact.closed_at) == (life.at(70), life.at(80))


def test_clocks_met_on_time_late_and_breached() -> None:
    life = Life("i1", START).report().assign(1)
    life.clock(1, "accept", 31).met(10, "accept")  # on time by due_at
    life.clock(1, "resolve", 100).breach(100, "resolve", 100).met(130, "resolve", on_time=True)
    fact = fold(life)
    assert fact.accept_on_time is True
    assert fact.resolve_on_time is False  # a breach stays a miss
    assert fact.breaches == 1


def test_a_superseded_clock_is_not_due_and_a_stale_stop_is_ignored() -> None:
    life = Life("i1", START).report().assign(1).clock(1, "accept", 31)
    life.cancel_clock(10, "accept").clock(10, "accept", 40)
    fact = fold(life)
    assert (fact.accept_on_time, fact.accept_due_at, fact.accept_clock_version) == (
        None,
        life.at(40),
        2,
    )
    stale = Life("i1", START).clock(0, "accept", 5).met(50, "accept").events[-1]
    assert project(fact, stale, fact.last_sequence + 1) is None


def test_extensions_move_the_due_time_and_escalation_keeps_the_highest_rung() -> None:
    life = Life("i1", START).report().assign(1).clock(1, "resolve", 60).extend(30, "resolve", 600)
    life.escalate(70, 1).escalate(200, 3).escalate(210, 2)
    fact = fold(life)
    assert (fact.extensions, fact.resolve_due_at) == (1, life.at(600))
    assert (fact.escalations, fact.escalation_level) == (3, 3)


def test_merges_and_suspensions_are_counted() -> None:
    life = Life("i1", START).report().assign(1).merge(3).merge(4).suspend(10).resume(20)
    fact = fold(life)
    assert (fact.merges, fact.suspensions, fact.suspended) == (2, 1, False)


def test_a_class_order_moves_the_resolve_due_time_to_the_restarted_clock() -> None:
    # What sla writes for the command centre's order: the old resolve superseded, a new one.
    life = Life("i1", START).report().assign(1).clock(1, "resolve", 1441)
    life._add(
        SlaClassOrdered,
        30,
        sla_class="difficult",
        previous_class="standard",
        ordered_by=UnitRef(kind=UnitKind.COMMAND_CENTRE, id="command-centre"),
        reason="three departments",
    )
    life.cancel_clock(30, "resolve").clock(30, "resolve", 8 * 1440)
    fact = fold(life)
    assert (fact.resolve_due_at, fact.resolve_clock_version, fact.resolve_on_time) == (
        life.at(8 * 1440),
        2,
        None,
    )
