"""The chaos tests' ledger finds what it is there to find: a lost report, a doubled report, an
unassigned incident, a double assignment, a doubled clock or breach, a dead letter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from civicgrid.events.base import Actor, ActorKind
from civicgrid.events.incident_events import (
    Assigned,
    HandlingLevel,
    Jurisdiction,
    SlaBreached,
    SlaClockStarted,
)
from tests.support.events.factories import GRID_UNIT, reported
from tests.support.ledger import Ledger

ROUTING = Actor(kind=ActorKind.SERVICE, id="routing")
DUE = datetime(2026, 12, 1, tzinfo=UTC)


def assigned(incident_id: str, number: int = 1) -> Assigned:
    return Assigned(
        incident_id=incident_id,
        source="routing",
        actor=ROUTING,
        correlation_id="c",
        level=HandlingLevel.GRID,
        lead_unit=GRID_UNIT,
        sla_class="standard",
        on_site=False,
        jurisdiction=Jurisdiction(),
        rule="r",
        policy_version=1,
        explanation="e",
        assignment_no=number,
    )


def sla(kind: type[Any], incident_id: str, **extra: Any) -> Any:
    fields = {"clock": "accept", "due_at": DUE, "clock_version": 1, **extra}
    return kind(incident_id=incident_id, source="sla", actor=ROUTING, correlation_id="c", **fields)


def clocks(incident_id: str) -> list[Any]:
    return [
        sla(SlaClockStarted, incident_id, sla_class="s", started_at=DUE, warn_at=DUE, clock=name)
        for name in ("accept", "resolve")
    ]


def test_a_clean_run_has_no_problems() -> None:
    report = reported()
    ledger = Ledger([report, assigned(report.incident_id), *clocks(report.incident_id)])
    assert ledger.problems({"k1": report.incident_id}) == []


def test_clocks_sla_never_started_are_found() -> None:
    report = reported()
    ledger = Ledger([report, assigned(report.incident_id), clocks(report.incident_id)[0]])
    assert ledger.problems({"k1": report.incident_id}) == [
        f"1 incidents' clocks never started: ['{report.incident_id}']"
    ]


def test_lost_and_doubled_reports_and_missing_or_double_assignments_are_found() -> None:
    first, second = reported(), reported()
    ledger = Ledger([first, assigned(first.incident_id), assigned(first.incident_id), second])
    problems = "\n".join(ledger.problems({"k1": first.incident_id, "k2": "LOST", "k3": "x"}))
    assert "3 reports taken, 2 reported/merged events stored" in problems
    assert "receipts naming incidents the stream does not hold: ['LOST', 'x']" in problems
    assert f"1 incidents never assigned: ['{second.incident_id}']" in problems
    assert f"{first.incident_id} assigned 2 times" in problems
    assert f"{first.incident_id} assignment_no 1 written 2x" in problems


def test_doubled_clocks_breaches_and_dead_letters_are_found() -> None:
    report = reported()
    started = sla(SlaClockStarted, report.incident_id, sla_class="s", started_at=DUE, warn_at=DUE)
    breached = sla(SlaBreached, report.incident_id)
    ledger = Ledger(
        [report, assigned(report.incident_id), started, started, breached, breached],
        dead_letters=["routing: boom"],
    )
    problems = "\n".join(ledger.problems({"k": report.incident_id}))
    assert f"{report.incident_id} sla_clock_started accept 1 written 2 times" in problems
    assert f"{report.incident_id} sla_breached accept 1 written 2 times" in problems
    assert "1 dead letters" in problems
