"""Reads that decide are never answered from a replica behind the leader.

A follower of a replicated stream answers Direct Gets from what it has applied. These tests
play such a follower on one real nats-server (``LaggingReplica``: the same answers a replica
at that sequence gives); tests/chaos/test_stale_reads.py does it with a real 3-node cluster.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient

from civicgrid.events import streams, subjects
from civicgrid.events.base import IncidentEvent
from civicgrid.events.decide import DEFAULT_ATTEMPTS, Cause, decide_and_append
from civicgrid.events.incident_events import Accepted
from civicgrid.events.store import EventStore, History, StoreReadError
from civicgrid.servicekit.natsserver import EmbeddedNats
from tests.support.events.factories import accepted, reported
from tests.support.events.lagging_replica import LaggingReplica


@pytest_asyncio.fixture
async def own_nc(nats_server: EmbeddedNats) -> AsyncIterator[NatsClient]:
    """A connection of its own: the lagging replica rewrites only this one's reads."""
    client = await nats.connect(nats_server.client_url, name="lagging")
    yield client
    await client.close()


async def _reported_then_accepted(store: EventStore) -> tuple[str, int, int]:
    """An incident of two events: (id, sequence of the first, sequence of the second)."""
    first = reported()
    one = (await store.append(first, msg_id=first.event_id, expected_version=0)).sequence
    second = accepted(first.incident_id)
    two = (await store.append(second, msg_id=second.event_id, expected_version=one)).sequence
    return first.incident_id, one, two


async def test_nats_server_ignores_min_last_seq_so_the_store_checks_for_itself(
    nc: NatsClient, store: EventStore
) -> None:
    """Why the store reads the replica's position from the answer: a ``min_last_seq`` past
    the stream's end is answered as if absent (nats-server 2.15.1 has no such field). If this
    fails, the server honours it now and could do the check itself."""
    incident_id, _, last = await _reported_then_accepted(store)
    request = {"multi_last": [subjects.incident_events(incident_id)], "batch": 8}
    inbox = nc.new_inbox()
    answers = await nc.subscribe(inbox)
    await nc.publish(
        f"$JS.API.DIRECT.GET.{streams.INCIDENTS}",
        json.dumps({**request, "min_last_seq": last + 1_000_000}).encode(),
        reply=inbox,
    )
    statuses = []
    for _ in range(3):
        msg = await answers.next_msg(timeout=5)
        statuses.append((msg.headers or {}).get("Status"))
        if statuses[-1] is not None:
            break
    await answers.unsubscribe()
    assert statuses == [None, None, "204"], "answered with both events, not refused with 412"


async def test_a_reaction_read_by_a_lagging_replica_is_asked_again_until_it_has_the_event(
    own_nc: NatsClient, store: EventStore
) -> None:
    incident_id, _, reacted_to = await _reported_then_accepted(store)
    lagging = LaggingReplica(own_nc, applied=reacted_to - 1, reads=2)
    history = await EventStore(own_nc.jetstream()).load(incident_id, at_least=reacted_to)
    assert history.version == reacted_to, "decided without the event it reacts to"
    assert isinstance(history.events[-1].event, Accepted)
    assert lagging.stale_answers == 2


async def test_a_replica_without_the_incident_at_all_is_behind_too(
    own_nc: NatsClient, store: EventStore
) -> None:
    incident_id, first, reacted_to = await _reported_then_accepted(store)
    LaggingReplica(own_nc, applied=first - 1, reads=1)
    history = await EventStore(own_nc.jetstream()).load(incident_id, at_least=reacted_to)
    assert len(history) == 2


async def test_a_replica_that_never_catches_up_is_a_read_error_not_a_stale_history(
    own_nc: NatsClient, store: EventStore
) -> None:
    incident_id, _, reacted_to = await _reported_then_accepted(store)
    LaggingReplica(own_nc, applied=reacted_to - 1, reads=1_000)
    with pytest.raises(StoreReadError, match=str(reacted_to)):
        await EventStore(own_nc.jetstream()).load(incident_id, at_least=reacted_to)


async def test_the_leader_knows_an_incidents_last_sequence(store: EventStore) -> None:
    incident_id, _, last = await _reported_then_accepted(store)
    assert await store.last_sequence(incident_id) == last
    assert await store.last_sequence("NEVER-WRITTEN") == 0


async def test_a_read_that_decides_outside_a_decision_is_as_recent_as_the_leader(
    own_nc: NatsClient, store: EventStore
) -> None:
    """A merge's source is decided on but not appended to: it is read with load_latest."""
    incident_id, _, last = await _reported_then_accepted(store)
    lagging = LaggingReplica(own_nc, applied=last - 1, reads=1)
    lagging_store = EventStore(own_nc.jetstream())
    assert (await lagging_store.load_latest(incident_id)).version == last
    assert lagging.stale_answers == 1
    assert len(await lagging_store.load_latest("NEVER-WRITTEN")) == 0


def _accept_once(history: History) -> list[IncidentEvent]:
    """A command refused on a history with an acceptance in it ("already accepted")."""
    if any(isinstance(event, Accepted) for event in history):
        raise ValueError("already accepted")
    return [accepted(history.incident_id)]


def _needs_acceptance(history: History) -> list[IncidentEvent]:
    """A command refused until the incident was accepted ("not accepted yet")."""
    if not any(isinstance(event, Accepted) for event in history):
        raise ValueError("not accepted yet")
    return [accepted(history.incident_id, correlation_id="after")]


def _nothing_before_acceptance(history: History) -> list[IncidentEvent]:
    """A command that is a no-op until the incident was accepted."""
    if not any(isinstance(event, Accepted) for event in history):
        return []
    return [accepted(history.incident_id, correlation_id="after")]


@pytest.mark.parametrize("decide", [_needs_acceptance, _nothing_before_acceptance])
async def test_a_command_that_would_write_nothing_on_a_stale_history_decides_again_on_the_latest(
    own_nc: NatsClient, store: EventStore, decide: object
) -> None:
    incident_id, _, last = await _reported_then_accepted(store)
    lagging = LaggingReplica(own_nc, applied=last - 1, reads=1)
    decided = await decide_and_append(
        EventStore(own_nc.jetstream()),
        incident_id,
        Cause("cmd:test:after-acceptance"),
        decide,  # type: ignore[arg-type]
    )
    assert lagging.stale_answers == 1
    assert decided.history.version == last
    assert [s.event.correlation_id for s in decided.written] == ["after"]


async def test_a_refusal_on_the_latest_history_stands(
    own_nc: NatsClient, store: EventStore
) -> None:
    incident_id, _, _ = await _reported_then_accepted(store)
    with pytest.raises(ValueError, match="already accepted"):
        await decide_and_append(
            EventStore(own_nc.jetstream()), incident_id, Cause("cmd:test:again"), _accept_once
        )
    assert len(await store.load(incident_id)) == 2


async def test_a_conflict_reloads_at_least_up_to_the_leaders_latest(
    own_nc: NatsClient, store: EventStore
) -> None:
    """A replica that stays behind for as many reads as a decision has attempts: each
    conflict used to reload from it again, until the decision gave up."""
    first = reported()
    one = (await store.append(first, msg_id=first.event_id, expected_version=0)).sequence
    later = accepted(first.incident_id)
    last = (await store.append(later, msg_id=later.event_id, expected_version=one)).sequence
    LaggingReplica(own_nc, applied=one, reads=DEFAULT_ATTEMPTS)
    decided = await decide_and_append(
        EventStore(own_nc.jetstream()),
        first.incident_id,
        Cause("cmd:test:note"),
        lambda history: [accepted(history.incident_id, correlation_id="note")],
    )
    assert decided.history.version == last
    assert [s.sequence for s in decided.written] == [decided.version]
