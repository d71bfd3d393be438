"""Whole histories held in memory: a decision on one reads nothing from the server, and
anything that is not proven whole (a gap, a message without expectation, another writer) goes
back to the server, with every guarantee of ``decide_and_append`` kept."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry

from civicgrid.events import streams, subjects
from civicgrid.events.base import IncidentEvent
from civicgrid.events.decide import Cause, decide_and_append
from civicgrid.events.ids import new_event_id
from civicgrid.events.known_histories import KnownHistories, history_reads_counter
from civicgrid.events.models import load_event_json
from civicgrid.events.store import ConcurrencyConflict, EventStore, History, StoredEvent
from tests.support.events.factories import accepted, reported
from tests.support.events.waiting import eventually

CONTROL = "control"


@dataclass
class DirectGets:
    """The Direct Gets the server is sent for one incident's messages (a copy of each request
    reaches every subscriber of its subject)."""

    nc: NatsClient
    incident_id: str
    seen: list[str] = field(default_factory=list)

    async def _count(self, msg: Msg) -> None:
        request = msg.data.decode()
        if f"incident.{self.incident_id}." in request:
            self.seen.append(request)

    async def made(self) -> int:
        """How many were sent so far: a control request goes last on the same connection and
        is waited for, so every request before it has been counted."""
        before = len(self.seen)
        control = json.dumps({"last_by_subj": f"incident.{self.incident_id}.{CONTROL}"})
        await self.nc.request(
            f"$JS.API.DIRECT.GET.{streams.INCIDENTS}", control.encode(), timeout=5
        )
        await eventually(
            lambda: _async(len(self.seen) > before), what="the control request counted"
        )
        self.seen.pop()
        return len(self.seen)


async def _async(value: bool) -> bool:
    return value


@pytest_asyncio.fixture
async def counting(nc: NatsClient) -> AsyncIterator[list[DirectGets]]:
    made: list[DirectGets] = []

    async def route(msg: Msg) -> None:
        for counter in made:
            await counter._count(msg)

    subscription = await nc.subscribe(f"$JS.API.DIRECT.GET.{streams.INCIDENTS}", cb=route)
    await nc.flush()
    yield made
    await subscription.unsubscribe()


def direct_gets(counting: list[DirectGets], nc: NatsClient, incident_id: str) -> DirectGets:
    counter = DirectGets(nc, incident_id)
    counting.append(counter)
    return counter


async def show(
    histories: KnownHistories, js: JetStreamContext, sequence: int, *, parsed: bool = True
) -> None:
    """Hand the stored message at ``sequence`` to the histories as a consumer delivers it."""
    raw = await js.get_msg(streams.INCIDENTS, sequence)
    assert raw.subject is not None and raw.seq is not None and raw.data is not None
    event = load_event_json(raw.data) if parsed else None
    histories.observe(raw.subject, raw.seq, raw.headers or {}, event=event, data=raw.data)


async def new_incident(store: EventStore) -> tuple[str, int]:
    first = reported()
    written = await store.append_decision(
        [first], cause=f"intake:{first.event_id}", fingerprint="", expected_version=0
    )
    return first.incident_id, written[-1].sequence


def accept_once(incident_id: str, key: str) -> tuple[Cause, list[IncidentEvent]]:
    return Cause(key, fingerprint="f-" + key), [accepted(incident_id)]


def same(left: History, right: History) -> bool:
    return left.events == right.events and dict(left.causes) == dict(right.causes)


async def test_a_new_incident_shown_is_decided_on_without_a_read(
    store: EventStore, js: JetStreamContext, nc: NatsClient, counting: list[DirectGets]
) -> None:
    registry = CollectorRegistry()
    histories = KnownHistories(store, reads=history_reads_counter(registry), service="test")
    incident_id, first = await new_incident(store)
    gets = direct_gets(counting, nc, incident_id)
    await show(histories, js, first)
    cause, events = accept_once(incident_id, "routing:r1")
    decided = await decide_and_append(
        histories, incident_id, cause, lambda h: events if len(h) == 1 else [], at_least=first
    )
    assert [s.event for s in decided.written] == events
    # Then the history it wrote is held too: the next reaction reads nothing either.
    again = await histories.load(incident_id, at_least=decided.version)
    assert await gets.made() == 0
    assert same(again, await store.load(incident_id))
    assert again.causes == {
        f"intake:{again.events[0].event.event_id}": "",
        cause.key: "f-" + cause.key,
    }
    assert (
        registry.get_sample_value(
            "civicgrid_history_reads_total", {"service": "test", "outcome": "hit"}
        )
        == 2
    )
    assert (
        registry.get_sample_value(
            "civicgrid_history_reads_total", {"service": "test", "outcome": "miss"}
        )
        == 0
    )


async def test_a_redelivered_cause_is_already_applied_without_a_read(
    store: EventStore, js: JetStreamContext, nc: NatsClient, counting: list[DirectGets]
) -> None:
    histories = KnownHistories(store)
    incident_id, first = await new_incident(store)
    await show(histories, js, first)
    cause, events = accept_once(incident_id, "routing:r1")
    await decide_and_append(histories, incident_id, cause, lambda _h: events, at_least=first)
    gets = direct_gets(counting, nc, incident_id)
    await show(histories, js, first)  # the trigger, delivered again
    redelivered = await decide_and_append(
        histories, incident_id, cause, lambda _h: [accepted(incident_id)], at_least=first
    )
    assert redelivered.already_applied and redelivered.written == ()
    assert await gets.made() == 0
    assert len(await store.load(incident_id)) == 2


async def test_messages_parsed_only_when_asked_for(
    store: EventStore, js: JetStreamContext, nc: NatsClient, counting: list[DirectGets]
) -> None:
    histories = KnownHistories(store)
    incident_id, first = await new_incident(store)
    batch = [accepted(incident_id, correlation_id=f"b{n}") for n in range(3)]
    written = await store.append_decision(
        batch, cause="other:batch", fingerprint="fp", expected_version=first
    )
    gets = direct_gets(counting, nc, incident_id)
    for stored in (first, *(s.sequence for s in written)):
        await show(histories, js, stored, parsed=False)
    held = await histories.load(incident_id, at_least=written[-1].sequence)
    assert await gets.made() == 0
    assert same(held, await store.load(incident_id))
    assert held.causes["other:batch"] == "fp"


async def test_a_gap_forgets_the_history_and_the_next_load_reads_it(
    store: EventStore, js: JetStreamContext, nc: NatsClient, counting: list[DirectGets]
) -> None:
    histories = KnownHistories(store)
    incident_id, first = await new_incident(store)
    await show(histories, js, first)
    unseen = await store.append_decision(
        [accepted(incident_id)], cause="other:1", fingerprint="", expected_version=first
    )
    later = await store.append_decision(
        [accepted(incident_id)],
        cause="other:2",
        fingerprint="",
        expected_version=unseen[-1].sequence,
    )
    gets = direct_gets(counting, nc, incident_id)
    await show(histories, js, later[-1].sequence)
    assert histories.version_of(incident_id) is None
    history = await histories.load(incident_id, at_least=later[-1].sequence)
    assert await gets.made() >= 1  # one per subject read
    assert len(history) == 3
    # What was read is whole: held from here on.
    assert histories.version_of(incident_id) == later[-1].sequence


async def test_a_message_without_expectation_forgets_the_history(
    store: EventStore, js: JetStreamContext, nc: NatsClient, counting: list[DirectGets]
) -> None:
    histories = KnownHistories(store)
    incident_id, first = await new_incident(store)
    await show(histories, js, first)
    loose = await store.append(accepted(incident_id), msg_id=new_event_id(), expected_version=None)
    gets = direct_gets(counting, nc, incident_id)
    await show(histories, js, loose.sequence)
    history = await histories.load(incident_id, at_least=loose.sequence)
    assert await gets.made() >= 1
    assert [s.sequence for s in history.events] == [first, loose.sequence]


async def test_only_a_history_reaching_at_least_is_an_answer(
    store: EventStore, js: JetStreamContext, nc: NatsClient, counting: list[DirectGets]
) -> None:
    """Held up to ``reported``, asked for the event after it (not shown yet): read."""
    registry = CollectorRegistry()
    histories = KnownHistories(store, reads=history_reads_counter(registry), service="test")
    incident_id, first = await new_incident(store)
    await show(histories, js, first)
    after = await store.append_decision(
        [accepted(incident_id)], cause="other:1", fingerprint="", expected_version=first
    )
    gets = direct_gets(counting, nc, incident_id)
    history = await histories.load(incident_id, at_least=after[-1].sequence)
    assert await gets.made() == 1
    assert len(history) == 2
    assert (
        registry.get_sample_value(
            "civicgrid_history_reads_total", {"service": "test", "outcome": "miss"}
        )
        == 1
    )
    # A message held already (delivered after the read) changes nothing.
    await show(histories, js, after[-1].sequence)
    assert histories.version_of(incident_id) == after[-1].sequence


async def test_a_load_without_at_least_always_reads(
    store: EventStore, js: JetStreamContext, nc: NatsClient, counting: list[DirectGets]
) -> None:
    """A read API's load: what is held may be older than the server by any amount of time."""
    histories = KnownHistories(store)
    incident_id, first = await new_incident(store)
    await show(histories, js, first)
    await store.append_decision(
        [accepted(incident_id)], cause="other:1", fingerprint="", expected_version=first
    )
    gets = direct_gets(counting, nc, incident_id)
    assert len(await histories.load(incident_id)) == 2
    assert await gets.made() == 1


async def test_another_replica_wrote_the_same_cause_nothing_twice(
    store: EventStore, js: JetStreamContext, nc: NatsClient, counting: list[DirectGets]
) -> None:
    """Replica A holds [reported]; replica B handled the same delivery first. A's decision on
    its stale history is refused by the server, A reads the leader's history and finds the
    cause applied."""
    replica_a = KnownHistories(EventStore(js))
    replica_b = KnownHistories(EventStore(js))
    incident_id, first = await new_incident(store)
    await show(replica_a, js, first)
    await show(replica_b, js, first)
    cause, events = accept_once(incident_id, "routing:r1")
    by_b = await decide_and_append(replica_b, incident_id, cause, lambda _h: events, at_least=first)
    gets = direct_gets(counting, nc, incident_id)
    conflicts: list[None] = []
    by_a = await decide_and_append(
        replica_a,
        incident_id,
        cause,
        lambda _h: [accepted(incident_id)],
        at_least=first,
        on_conflict=lambda: conflicts.append(None),
    )
    assert conflicts and by_a.already_applied and by_a.written == ()
    assert await gets.made() >= 1
    assert [s.sequence for s in (await store.load(incident_id)).events] == [first, by_b.version]
    # A holds what it read: the leader's history.
    assert replica_a.version_of(incident_id) == by_b.version


async def test_another_writer_makes_the_next_decision_read_and_decide_again(
    store: EventStore, js: JetStreamContext
) -> None:
    histories = KnownHistories(store)
    incident_id, first = await new_incident(store)
    await show(histories, js, first)
    other = await store.append_decision(
        [accepted(incident_id)], cause="other:1", fingerprint="", expected_version=first
    )
    seen: list[int] = []

    def decide(history: History) -> list[IncidentEvent]:
        seen.append(len(history))
        return [accepted(incident_id)]

    with pytest.raises(ConcurrencyConflict):
        await histories.append_decision(
            [accepted(incident_id)], cause="stale", fingerprint="", expected_version=first
        )
    assert histories.version_of(incident_id) is None  # refused: only a read says what is there
    await show(histories, js, first)
    decided = await decide_and_append(histories, incident_id, Cause("mine"), decide, at_least=first)
    assert seen == [1, 2]  # the held history, then the server's after the refusal
    assert decided.history.version == other[-1].sequence
    loaded = await store.load(incident_id)
    assert [s.sequence for s in loaded.events][-1] == decided.version
    assert histories.version_of(incident_id) == decided.version
    assert same(await histories.load(incident_id, at_least=decided.version), loaded)


async def test_the_least_recently_used_is_forgotten_beyond_the_bound(
    store: EventStore, js: JetStreamContext, nc: NatsClient, counting: list[DirectGets]
) -> None:
    histories = KnownHistories(store, size=2)
    incidents = [await new_incident(store) for _ in range(3)]
    (oldest, at_oldest), (used, at_used), (newest, at_newest) = incidents
    await show(histories, js, at_oldest)
    await show(histories, js, at_used)
    await histories.load(oldest, at_least=at_oldest)  # used since: not the least recent
    await show(histories, js, at_newest)
    assert len(histories) == 2
    assert histories.version_of(used) is None
    assert histories.version_of(oldest) == at_oldest
    assert histories.version_of(newest) == at_newest
    gets = direct_gets(counting, nc, used)
    await histories.load(used, at_least=at_used)
    assert await gets.made() == 1


def test_a_held_history_is_the_stored_chain_only() -> None:
    """Out of order, a second start, a foreign expectation: nothing wrong is ever held."""
    histories = KnownHistories(_Unused())
    incident = "I1"
    subject = subjects.incident_event(incident, "accepted")

    def after(previous: int, on: str = incident) -> dict[str, str]:
        return {
            "Nats-Expected-Last-Subject-Sequence": str(previous),
            "Nats-Expected-Last-Subject-Sequence-Subject": subjects.incident_events(on),
        }

    histories.observe(subject, 9, after(4))  # before its start was seen: not held
    assert histories.version_of(incident) is None
    histories.observe(subject, 4, after(0))
    histories.observe(subject, 9, after(4))
    histories.observe(subject, 10, {"Nats-Batch-Sequence": "2"})
    assert histories.version_of(incident) == 10
    histories.observe(subject, 7, after(4))  # older than what is held: a redelivery
    assert histories.version_of(incident) == 10
    histories.observe(subject, 12, after(0))  # a second start cannot be: forget
    assert histories.version_of(incident) is None
    histories.observe(subject, 14, after(0, on="I2"))  # an expectation about another incident
    assert histories.version_of(incident) is None
    histories.observe("sla.fired.I1.x.y", 15, after(0))  # not an incident event
    assert len(histories) == 0


class _Unused:
    async def load(self, incident_id: str, *, at_least: int = 0) -> History:
        raise AssertionError("no read expected")

    async def last_sequence(self, incident_id: str) -> int:
        raise AssertionError("no read expected")

    async def append_decision(
        self,
        events: object,
        *,
        cause: str,
        fingerprint: str,
        expected_version: int,
    ) -> list[StoredEvent]:
        raise AssertionError("no write expected")
