"""The read model's fence: when it offers an incident's folded clocks, they are what the walk of
the incident's history gives (nothing owed, the same running clocks), at the incident's last
sequence. Random histories where sla reacts at once, late (several triggers answered in one
go, out of place), or never; with timer firings and extensions in between."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.msg import Msg

from civicgrid.city.workcalendar import build_calendar
from civicgrid.events import wire
from civicgrid.events.base import IncidentEvent
from civicgrid.events.store import StoredEvent
from civicgrid.sla.domain.clocks import Clock, Clocks, Status
from civicgrid.sla.domain.decide import (
    Firing,
    default_notify_unit,
    judge_firing,
    pending_firings,
    pinned_policy_version,
    walk,
)
from civicgrid.sla.read_model import RunningClocks
from tests.support.sla import GRID_A, GRID_B, Script, policy

CALENDAR = build_calendar("Asia/Shanghai", "chinese-calendar")
POLICY = policy()
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@dataclass
class _Sequence:
    stream: int


@dataclass
class _Metadata:
    sequence: _Sequence
    num_pending: int = 0


@dataclass
class _Message:
    subject: str
    data: bytes
    metadata: _Metadata


@dataclass
class Stream:
    """One incident's history as the view receives it (its own sequence numbers)."""

    view: RunningClocks = field(default_factory=RunningClocks)
    history: list[IncidentEvent] = field(default_factory=list)

    def append(self, *events: IncidentEvent) -> None:
        for event in events:
            self.history.append(event)
            sequence = len(self.history)
            message = _Message(
                wire.event_subject(event), wire.encode(event), _Metadata(_Sequence(sequence))
            )
            self.view.on_message(cast(Msg, message))

    def react(self, incident_id: str) -> None:
        self.append(*walk(incident_id, self.history, POLICY, CALENDAR.due).missing)


def _active(clocks: Clocks) -> dict[str, Clock]:
    return {name: clock for name, clock in clocks.by_name.items() if clock.active}


def assert_fence_is_the_walk(stream: Stream, incident_id: str) -> bool:
    """True when the fence is offered (and then it must hold)."""
    offered = stream.view.fence(incident_id)
    if offered is None:
        return False
    version, folded = offered
    walked = walk(incident_id, stream.history, POLICY, CALENDAR.due)
    assert version == len(stream.history)
    assert walked.missing == ()
    assert _active(folded) == _active(walked.clocks)
    assert folded.policy_version == pinned_policy_version(stream.history)
    if folded.last_assignment is not None:
        assert folded.last_assignment == walked.clocks.last_assignment
    return True


def _command(script: Script, command: str, history: list[IncidentEvent]) -> IncidentEvent:
    if command == "assign_a":
        return script.assigned(GRID_A)
    if command == "assign_b_on_site":
        return script.assigned(GRID_B, sla_class="on_site", on_site=True)
    if command == "extend":
        walked = walk(script.incident_id, history, POLICY, CALENDAR.due).clocks
        resolve = walked.by_name.get("resolve")
        due = resolve.due_at if resolve is not None else script.now
        return script.extended(due + timedelta(hours=1))
    if command == "note":
        return script.reported()  # an event that is neither a trigger nor a clock's
    builders = {
        "accept": script.accepted,
        "arrive": script.arrived,
        "return": script.returned,
        "suspend": script.suspended,
        "resume": script.resumed,
        "resolve": script.resolved,
        "reopen": script.reopened,
        "close": script.closed,
    }
    return builders[command]()


def _fire_next(stream: Stream, incident_id: str) -> None:
    """A firing of the walk's next pending step, appended as the service would."""
    clocks = walk(incident_id, stream.history, POLICY, CALENDAR.due).clocks
    for clock in clocks.running():
        for due in pending_firings(incident_id, clock, POLICY).values():
            if due is None or due.fire_at is None:
                continue
            judged = judge_firing(
                clocks,
                due,
                POLICY,
                due.fire_at,
                correlation_id="corr",
                notify_unit=default_notify_unit,
            )
            stream.append(*judged.events)
            return


COMMANDS = (
    "assign_a",
    "assign_b_on_site",
    "accept",
    "arrive",
    "return",
    "suspend",
    "resume",
    "resolve",
    "reopen",
    "close",
    "extend",
    "note",
)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(COMMANDS),
            st.sampled_from(["now", "later", "now", "fire"]),
            st.integers(min_value=0, max_value=3600),
        ),
        min_size=1,
        max_size=20,
    ),
)
def test_a_fence_offered_is_the_walk_of_the_history(steps: list[tuple[str, str, int]]) -> None:
    script = Script(T0)
    stream = Stream()
    stream.append(script.reported())
    for command, reaction, gap in steps:
        stream.append(_command(script.at(gap), command, stream.history))
        assert_fence_is_the_walk(stream, script.incident_id)
        if reaction == "now":
            stream.react(script.incident_id)
        elif reaction == "fire":
            stream.react(script.incident_id)
            _fire_next(stream, script.incident_id)
        # "later": the next "now" answers this trigger and the next ones together.
        assert_fence_is_the_walk(stream, script.incident_id)
    stream.react(script.incident_id)
    assert_fence_is_the_walk(stream, script.incident_id)


def test_an_incident_answered_in_place_is_offered_after_each_reaction() -> None:
    script = Script(T0)
    stream = Stream()
    stream.append(script.reported(), script.assigned(GRID_A))
    # The assignment is not answered yet: its clocks are owed.
    assert stream.view.fence(script.incident_id) is None
    stream.react(script.incident_id)
    assert assert_fence_is_the_walk(stream, script.incident_id)
    _fire_next(stream, script.incident_id)  # the accept clock's warning
    assert assert_fence_is_the_walk(stream, script.incident_id)
    stream.append(script.at(60).accepted(GRID_A))
    stream.react(script.incident_id)
    assert assert_fence_is_the_walk(stream, script.incident_id)
    offered = stream.view.fence(script.incident_id)
    assert offered is not None
    assert sorted(_active(offered[1])) == ["resolve"]


def test_triggers_answered_together_are_never_offered_again() -> None:
    script = Script(T0)
    stream = Stream()
    stream.append(script.reported(), script.assigned(GRID_A), script.at(60).accepted(GRID_A))
    stream.react(script.incident_id)  # both answered at once: accept's stop is out of place
    assert stream.view.fence(script.incident_id) is None
    stream.append(script.at(60).suspended(GRID_A))
    stream.react(script.incident_id)
    assert stream.view.fence(script.incident_id) is None


def test_a_trigger_without_a_reaction_followed_by_another_event_is_not_offered() -> None:
    script = Script(T0)
    stream = Stream()
    stream.append(script.reported(), script.assigned(GRID_A))
    stream.react(script.incident_id)
    stream.append(script.at(60).arrived(GRID_A))  # no arrive clock: nothing to answer
    assert walk(script.incident_id, stream.history, POLICY, CALENDAR.due).missing == ()
    # The view cannot tell "nothing owed" from "not answered yet" without deciding.
    assert stream.view.fence(script.incident_id) is None
    stream.append(script.at(60).reported())
    assert stream.view.fence(script.incident_id) is None


def test_a_clock_started_without_a_trigger_is_offered() -> None:
    """The bench's shape: the clock's start written directly (no assignment to answer)."""
    script = Script(T0)
    stream = Stream()
    stream.append(script.reported(), script.assigned(GRID_A))
    started = walk(script.incident_id, stream.history, POLICY, CALENDAR.due).missing
    resolve = next(e for e in started if getattr(e, "clock", "") == "resolve")
    other = Stream()
    other.append(script.reported(), resolve.model_copy(update={"causation_id": None}))
    offered = other.view.fence(script.incident_id)
    assert offered is not None
    assert offered[0] == 2
    assert offered[1].by_name["resolve"].status is Status.RUNNING


def test_an_unreadable_event_ends_the_fence() -> None:
    script = Script(T0)
    stream = Stream()
    stream.append(script.reported(), script.assigned(GRID_A))
    stream.react(script.incident_id)
    assert stream.view.fence(script.incident_id) is not None
    subject = f"incident.{script.incident_id}.sla_warning"
    broken = _Message(subject, b"{not json", _Metadata(_Sequence(len(stream.history) + 1)))
    stream.view.on_message(cast(Msg, broken))
    assert stream.view.fence(script.incident_id) is None
    # Nor after every clock stopped and a new one started (the view follows it afresh).
    stream.append(script.at(60).closed())
    stream.react(script.incident_id)
    assert stream.view.clocks_of(script.incident_id) is None
    stream.append(script.at(60).reopened())
    stream.react(script.incident_id)
    assert stream.view.clocks_of(script.incident_id) is not None
    assert stream.view.fence(script.incident_id) is None


def test_a_firing_judged_on_the_fence_is_the_one_judged_on_the_walk() -> None:
    script = Script(T0)
    stream = Stream()
    stream.append(script.reported(), script.assigned(GRID_A, sla_class="on_site", on_site=True))
    stream.react(script.incident_id)
    offered = stream.view.fence(script.incident_id)
    assert offered is not None
    walked = walk(script.incident_id, stream.history, POLICY, CALENDAR.due).clocks
    resolve = walked.by_name["resolve"]
    firing = Firing(
        script.incident_id, "resolve", resolve.version, "breach", fire_at=resolve.due_at
    )
    on_fold = judge_firing(
        offered[1],
        firing,
        POLICY,
        resolve.due_at,
        correlation_id="c",
        notify_unit=default_notify_unit,
    )
    on_walk = judge_firing(
        walked, firing, POLICY, resolve.due_at, correlation_id="c", notify_unit=default_notify_unit
    )
    assert (on_fold.verdict, [e.event_type for e in on_fold.events]) == (
        on_walk.verdict,
        [e.event_type for e in on_walk.events],
    )
    assert on_fold.verdict == "fired"


def test_the_rest_of_a_half_stored_reaction_stored_later_is_not_offered() -> None:
    """An older release could store a reaction in parts: the walk puts the late part at its
    trigger, before whatever came between."""
    script = Script(T0)
    stream = Stream()
    assigned = script.assigned(GRID_A)
    stream.append(script.reported(), assigned)
    reaction = walk(script.incident_id, stream.history, POLICY, CALENDAR.due).missing
    stream.append(reaction[0], script.at(60).reported(), *reaction[1:])
    assert walk(script.incident_id, stream.history, POLICY, CALENDAR.due).missing == ()
    assert stream.view.fence(script.incident_id) is None


def test_what_a_firing_appended_on_the_fence_is_folded_at_once_and_once() -> None:
    script = Script(T0)
    stream = Stream()
    stream.append(script.reported(), script.assigned(GRID_A))
    stream.react(script.incident_id)
    offered = stream.view.fence(script.incident_id)
    assert offered is not None
    version, folded = offered
    resolve = folded.by_name["resolve"]
    firing = Firing(
        script.incident_id, "resolve", resolve.version, "breach", fire_at=resolve.due_at
    )
    judged = judge_firing(
        folded, firing, POLICY, resolve.due_at, correlation_id="c", notify_unit=default_notify_unit
    )
    breach = StoredEvent(version + 1, judged.events[0])
    stream.view.appended(script.incident_id, version - 1, [breach])  # not on this fold: ignored
    assert stream.view.fence(script.incident_id) == offered
    stream.view.appended(script.incident_id, version, [breach])
    now = stream.view.fence(script.incident_id)
    assert now is not None
    assert now[0] == version + 1
    assert now[1].by_name["resolve"].breached
    stream.append(judged.events[0])  # the stream brings it: already folded
    assert assert_fence_is_the_walk(stream, script.incident_id)
    assert stream.view.fence(script.incident_id) == now
