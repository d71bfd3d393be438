"""A command centre's SLA class order (``sla_class_ordered``): the clocks whose deadline the
new class changes restart from the order's time; the others, and stopped clocks, stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civicgrid.events.incident_events import ClockStopReason, SlaClockStarted, SlaClockStopped
from civicgrid.sla.domain.clocks import Status
from civicgrid.sla.domain.decide import Firing, default_notify_unit, judge_firing, walk
from tests.support.sla import GRID_A, GRID_B, types_of

from .test_clock_rules import CALENDAR, POLICY, Incident

# Thursday 2026-09-24 10:00 in Shanghai: the design's National Day example.
BEFORE_NATIONAL_DAY = datetime(2026, 9, 24, 2, 0, tzinfo=UTC)


def started(events: list, clock: str) -> SlaClockStarted:  # type: ignore[type-arg]
    found = [e for e in events if isinstance(e, SlaClockStarted) and e.clock == clock]
    assert len(found) == 1, types_of(events)
    return found[0]


def test_ordering_difficult_restarts_resolve_with_five_working_days_from_the_order() -> None:
    incident = Incident()
    incident.script.now = BEFORE_NATIONAL_DAY - timedelta(hours=2)
    incident.happen(incident.script.assigned())
    order = incident.script.at(2 * 3600).ordered("difficult", previous="standard")
    reaction = incident.happen(order)
    # accept is 30 minutes in both classes: it keeps running, untouched.
    assert types_of(reaction) == ["sla_clock_stopped:resolve", "sla_clock_started:resolve"]
    stop = reaction[0]
    assert isinstance(stop, SlaClockStopped)
    assert stop.reason is ClockStopReason.SUPERSEDED and stop.clock_version == 1
    resolve = started(reaction, "resolve")
    assert resolve.clock_version == 2 and resolve.sla_class == "difficult"
    assert resolve.started_at == order.occurred_at
    assert resolve.due_at == CALENDAR.due(order.occurred_at, POLICY.deadlines("difficult").resolve)
    assert resolve.due_at == datetime(2026, 10, 9, 16, 0, tzinfo=UTC)  # 10-10 00:00 local
    assert resolve.duration == "5wd" and resolve.policy_version == POLICY.policy_version
    assert resolve.unit == GRID_A and resolve.causation_id == order.event_id
    assert all(e.causation_id == order.event_id for e in reaction)
    clocks = incident.clocks()
    assert clocks.by_name["accept"].version == 1 and clocks.by_name["accept"].active


def test_ordering_urgent_restarts_accept_and_resolve_with_the_shorter_deadlines() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    order = incident.script.at(300).ordered("urgent")
    reaction = incident.happen(order)
    assert types_of(reaction) == [
        "sla_clock_stopped:accept",
        "sla_clock_started:accept",
        "sla_clock_stopped:resolve",
        "sla_clock_started:resolve",
    ]
    at = order.occurred_at
    assert started(reaction, "accept").due_at == at + timedelta(minutes=10)
    assert started(reaction, "resolve").due_at == at + timedelta(hours=4)
    # The warning follows the new clock (80 % of its time), not the old one's.
    assert started(reaction, "accept").warn_at == at + timedelta(minutes=8)


def test_the_superseded_clocks_firings_are_stale() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    old_due = incident.clocks().by_name["resolve"].due_at
    incident.happen(incident.script.at(60).ordered("difficult"))
    clocks = incident.clocks()
    for stage in ("warning", "breach"):
        judged = judge_firing(
            clocks,
            Firing(incident.script.incident_id, "resolve", 1, stage),
            POLICY,
            old_due + timedelta(hours=1),
            correlation_id="c",
            notify_unit=default_notify_unit,
        )
        assert (judged.verdict, judged.events) == ("stale", ())


def test_stopped_clocks_are_not_restarted_and_the_same_deadline_is_left_alone() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    incident.happen(incident.script.at(60).accepted())
    reaction = incident.happen(incident.script.at(60).ordered("difficult"))
    assert types_of(reaction) == ["sla_clock_stopped:resolve", "sla_clock_started:resolve"]
    assert incident.clocks().by_name["accept"].status is Status.STOPPED
    # difficult -> difficult would change nothing (intake refuses it; sla does nothing either).
    assert incident.happen(incident.script.at(60).ordered("difficult")) == []


def test_a_clock_the_new_class_has_no_deadline_for_is_cancelled() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned(sla_class="on_site", on_site=True))
    reaction = incident.happen(incident.script.at(60).ordered("difficult"))
    stops = {e.clock: e.reason for e in reaction if isinstance(e, SlaClockStopped)}
    assert stops == {"arrive": ClockStopReason.CANCELLED, "resolve": ClockStopReason.SUPERSEDED}
    assert types_of(reaction).count("sla_clock_started:arrive") == 0


def test_a_paused_clocks_successor_starts_paused_and_resumes_with_the_pause_added() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    incident.happen(incident.script.at(60).accepted())
    incident.happen(incident.script.at(60).suspended())
    order = incident.script.at(600).ordered("urgent")
    reaction = incident.happen(order)
    assert types_of(reaction) == [
        "sla_clock_stopped:resolve",
        "sla_clock_started:resolve",
        "sla_clock_paused:resolve",
    ]
    assert incident.clocks().by_name["resolve"].status is Status.PAUSED
    incident.happen(incident.script.at(3600).resumed())
    resolve = incident.clocks().by_name["resolve"]
    assert resolve.status is Status.RUNNING and resolve.version == 2
    assert resolve.due_at == order.occurred_at + timedelta(hours=4) + timedelta(hours=1)


def test_the_ordered_class_stands_over_later_assignments_and_reopening() -> None:
    incident = Incident()
    incident.happen(incident.script.ordered("urgent"))  # before any assignment: nothing runs
    assert incident.clocks().by_name == {}
    first = incident.happen(incident.script.at(60).assigned(GRID_A))
    assert {e.sla_class for e in first if isinstance(e, SlaClockStarted)} == {"urgent"}
    moved = incident.happen(incident.script.at(60).assigned(GRID_B))
    assert started(moved, "accept").sla_class == "urgent"
    incident.happen(incident.script.at(60).accepted(GRID_B))
    incident.happen(incident.script.at(60).resolved(GRID_B))
    reopened = incident.happen(incident.script.at(60).reopened())
    assert started(reopened, "resolve").sla_class == "urgent"


def test_an_ordered_class_the_policy_lacks_restarts_nothing_and_blocks_nothing() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    assert incident.happen(incident.script.at(60).ordered("no_such_class")) == []
    # Later events still decide, with the assignment's class.
    moved = incident.happen(incident.script.at(60).assigned(GRID_B))
    assert started(moved, "accept").sla_class == "standard"


def test_a_closed_incident_restarts_nothing() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    incident.happen(incident.script.at(60).closed())
    assert incident.happen(incident.script.at(60).ordered("urgent")) == []


def test_the_order_handled_late_decides_from_its_own_time() -> None:
    incident = Incident()
    script = incident.script
    incident.history += [script.assigned(), order := script.at(900).ordered("urgent")]
    walked = walk(script.incident_id, incident.history, POLICY, CALENDAR.due)
    assert types_of(walked.missing) == [
        "sla_clock_started:accept",
        "sla_clock_started:resolve",
        "sla_clock_stopped:accept",
        "sla_clock_started:accept",
        "sla_clock_stopped:resolve",
        "sla_clock_started:resolve",
    ]
    resolve = walked.missing[-1]
    assert isinstance(resolve, SlaClockStarted)
    assert resolve.due_at == order.occurred_at + timedelta(hours=4)
