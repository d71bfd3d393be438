"""Handlers with fakes (no broker): what is appended, under which message ids, what is armed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from civicgrid.city.workcalendar import build_calendar
from civicgrid.sla.domain.decide import default_notify_unit, walk
from civicgrid.sla.domain.policy import SlaPolicyVersion
from civicgrid.sla.handlers import SlaPorts, when_incident_event, when_timer_fired
from civicgrid.sla.metrics import SlaMetrics
from tests.support.events.memory_store import InMemoryStore
from tests.support.sla import FixedPolicies, RecordingTimers, Script, policy, rung

CALENDAR = build_calendar("Asia/Shanghai", "chinese-calendar")
POLICY = policy()


LADDERED = policy(ladder=(rung("community", "30m", "community_head"),))


class Notifier:
    async def publish(self, subject: str, payload: bytes) -> None:
        raise AssertionError("no notification expected")


def ports(
    store: InMemoryStore, timers: RecordingTimers, version: SlaPolicyVersion = POLICY
) -> SlaPorts:
    return SlaPorts(
        store=store,
        policies=FixedPolicies(version),
        calendar=CALENDAR,
        timers=timers,
        notifier=Notifier(),
        metrics=SlaMetrics.create(CollectorRegistry()),
        notify_unit=default_notify_unit,
    )


async def test_a_reaction_half_stored_by_an_older_release_is_completed_as_one_decision() -> None:
    """Before decisions were atomic, a crash could leave part of a reaction stored: the walk
    owes the rest, and it is appended as one decision under the reaction's cause."""
    store, timers = InMemoryStore(), RecordingTimers()
    script = Script(datetime(2026, 6, 2, 2, 0, tzinfo=UTC))
    assigned = script.assigned()
    for event in (script.reported(), assigned):
        store.add(event)
    first = walk(script.incident_id, [*await store.load(script.incident_id)], POLICY, CALENDAR.due)
    # Stored before a crash: only the accept clock's start, under the first message id.
    store.add(first.missing[0], f"sla:{script.incident_id}:{assigned.event_id}:0")
    settled = await when_incident_event(assigned, ports(store, timers))
    assert [(e.event_type, getattr(e, "clock", "")) for e in settled.written] == [
        ("sla_clock_started", "resolve")
    ]
    msg_ids = [msg_id for msg_id, _ in store.stored]
    assert msg_ids[-1] == f"sla:{assigned.event_id}:{script.incident_id}:0"
    # Both clocks' next steps are (re-)armed: the crash may have come before arming.
    assert sorted((f.clock, f.stage) for f in timers.armed) == [
        ("accept", "warning"),
        ("resolve", "warning"),
    ]


async def test_a_redelivered_event_appends_nothing_and_re_arms() -> None:
    store, timers = InMemoryStore(), RecordingTimers()
    script = Script(datetime(2026, 6, 2, 2, 0, tzinfo=UTC))
    assigned = script.assigned()
    for event in (script.reported(), assigned):
        store.add(event)
    await when_incident_event(assigned, ports(store, timers))
    stored = len(store.stored)
    again = await when_incident_event(assigned, ports(store, RecordingTimers()))
    assert again.written == () and len(store.stored) == stored


async def _assigned_under_a_ladder(store: InMemoryStore, timers: RecordingTimers) -> Script:
    script = Script(datetime(2026, 6, 2, 2, 0, tzinfo=UTC))
    assigned = script.assigned()
    for event in (script.reported(), assigned):
        store.add(event)
    await when_incident_event(assigned, ports(store, timers, LADDERED))
    return script


async def test_new_clocks_purge_no_escalation_schedule_they_never_had() -> None:
    """A clock that has never breached (and no earlier version of it) has had no escalation
    armed: cancelling one is a purge request per clock for nothing (replicated, on a cluster)."""
    store, timers = InMemoryStore(), RecordingTimers()
    await _assigned_under_a_ladder(store, timers)
    assert {(f.clock, f.stage) for f in timers.armed} == {
        ("accept", "warning"),
        ("resolve", "warning"),
    }
    assert timers.cancelled == []


async def test_a_clock_has_one_schedule_its_next_step_and_each_firing_arms_the_one_after() -> None:
    """Most clocks stop before their first step: arming the breach beside the warning was a
    schedule (and later its cancel) per clock for nothing."""
    store, timers = InMemoryStore(), RecordingTimers()
    await _assigned_under_a_ladder(store, timers)
    [warning] = [f for f in timers.armed if f.clock == "accept"]
    assert warning.stage == "warning"
    timers = RecordingTimers()
    heard = dataclasses.replace(ports(store, timers, LADDERED), notifier=Heard())
    await when_timer_fired(warning, heard)
    [breach] = timers.armed
    assert (breach.clock, breach.stage, breach.clock_version) == ("accept", "breach", 1)
    assert breach.fire_at is not None and warning.fire_at is not None
    assert breach.fire_at > warning.fire_at
    assert timers.cancelled == []


class Heard:
    async def publish(self, subject: str, payload: bytes) -> None:
        pass


async def test_a_breached_clock_that_stops_still_cancels_its_escalation() -> None:
    store, timers = InMemoryStore(), RecordingTimers()
    script = await _assigned_under_a_ladder(store, timers)
    warning = next(f for f in timers.armed if (f.clock, f.stage) == ("accept", "warning"))
    timers = RecordingTimers()
    heard = dataclasses.replace(ports(store, timers, LADDERED), notifier=Heard())
    await when_timer_fired(warning, heard)
    breach = next(f for f in timers.armed if (f.clock, f.stage) == ("accept", "breach"))
    timers = RecordingTimers()
    heard = dataclasses.replace(ports(store, timers, LADDERED), notifier=Heard())
    await when_timer_fired(breach, heard)
    assert ("accept", "escalation") in {(f.clock, f.stage) for f in timers.armed}
    accepted = script.at(3600).accepted()
    store.add(accepted)
    timers = RecordingTimers()
    await when_incident_event(accepted, ports(store, timers, LADDERED))
    assert (script.incident_id, "accept", "escalation") in timers.cancelled
