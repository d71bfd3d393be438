"""Decide-and-append against a real nats-server: atomic decisions, causes, fingerprints."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from civicgrid.events import wire
from civicgrid.events.decide import (
    Cause,
    IdempotencyConflict,
    applied_before,
    decide_and_append,
    fingerprint_of,
)
from civicgrid.events.incident_events import Accepted
from civicgrid.events.store import ConcurrencyConflict, EventStore, History
from tests.support.events.factories import accepted, reported


async def _new_incident(store: EventStore) -> str:
    first = reported()
    await store.append_decision(
        [first], cause=f"test:{first.event_id}", fingerprint="", expected_version=0
    )
    return first.incident_id


async def test_a_decision_of_several_events_is_stored_whole(store: EventStore) -> None:
    incident_id = await _new_incident(store)
    events = [accepted(incident_id, correlation_id=f"c{n}") for n in range(3)]
    decided = await decide_and_append(store, incident_id, Cause("test:three"), lambda _h: events)
    assert [s.event.event_id for s in decided.written] == [e.event_id for e in events]
    history = await store.load(incident_id)
    assert [s.sequence for s in history.events[1:]] == [s.sequence for s in decided.written]
    assert history.causes["test:three"] == ""


async def test_a_stale_decision_stores_nothing_at_all(store: EventStore) -> None:
    incident_id = await _new_incident(store)
    stale = (await store.load(incident_id)).version
    await store.append_decision(
        [accepted(incident_id)], cause="test:other", fingerprint="", expected_version=stale
    )
    with pytest.raises(ConcurrencyConflict):
        await store.append_decision(
            [accepted(incident_id), accepted(incident_id)],
            cause="test:stale",
            fingerprint="",
            expected_version=stale,
        )
    history = await store.load(incident_id)
    assert len(history) == 2
    assert "test:stale" not in history.causes


async def test_a_batch_that_never_commits_leaves_no_half(store: EventStore) -> None:
    """What a crash between two events of a decision looks like on the wire."""
    incident_id = await _new_incident(store)
    event = accepted(incident_id)
    headers = wire.cloudevents_headers(event)
    headers[wire.BATCH_ID] = uuid.uuid4().hex
    headers[wire.BATCH_SEQUENCE] = "1"
    client = store._js._nc
    reply = await client.request(
        wire.event_subject(event), wire.encode(event), headers=headers, timeout=2
    )
    assert not reply.data or "error" not in json.loads(reply.data)
    # The publisher dies here: no second message, no commit.
    history = await store.load(incident_id)
    assert [type(s.event).__name__ for s in history.events] == ["Reported"]


async def test_the_same_cause_is_applied_once(store: EventStore) -> None:
    incident_id = await _new_incident(store)
    cause = Cause("cmd:test:accept-1", fingerprint_of("accept", {"unit": "u1"}))
    calls = 0

    def decide(_history: History) -> list[Accepted]:
        nonlocal calls
        calls += 1
        return [accepted(incident_id)]

    first = await decide_and_append(store, incident_id, cause, decide)
    again = await decide_and_append(store, incident_id, cause, decide)
    assert len(first.written) == 1 and not first.already_applied
    assert again.written == () and again.already_applied
    assert calls == 1
    assert len(await store.load(incident_id)) == 2


async def test_the_same_key_for_another_command_is_refused(store: EventStore) -> None:
    incident_id = await _new_incident(store)
    key = "cmd:test:reused"
    await decide_and_append(
        store,
        incident_id,
        Cause(key, fingerprint_of("accept", {"unit": "u1"})),
        lambda _h: [accepted(incident_id)],
    )
    with pytest.raises(IdempotencyConflict):
        await decide_and_append(
            store,
            incident_id,
            Cause(key, fingerprint_of("return", {"unit": "u1"})),
            lambda _h: [accepted(incident_id)],
        )
    assert len(await store.load(incident_id)) == 2


async def test_concurrent_deciders_each_decide_on_what_the_other_wrote(
    store: EventStore,
) -> None:
    """Eight writers, each appending only if fewer than 4 acceptances exist: exactly 3 land."""
    incident_id = await _new_incident(store)

    def at_most_three(history: History) -> list[Accepted]:
        taken = sum(isinstance(s.event, Accepted) for s in history.events)
        return [accepted(incident_id)] if taken < 3 else []

    results = await asyncio.gather(
        *(
            decide_and_append(store, incident_id, Cause(f"test:w{n}"), at_most_three)
            for n in range(8)
        )
    )
    assert sum(len(r.written) for r in results) == 3
    history = await store.load(incident_id)
    assert sum(isinstance(s.event, Accepted) for s in history.events) == 3


class AskingCounted(EventStore):
    """The event store, counting the questions to the stream's leader."""

    asked = 0

    async def last_sequence(self, incident_id: str) -> int:
        self.asked += 1
        return await super().last_sequence(incident_id)


async def test_a_lost_race_reloads_up_to_what_the_refusal_names_without_asking(
    store: EventStore,
) -> None:
    """The server's refusal says the incident's last sequence ("wrong last sequence: N"):
    the next read must reach it, and asking the leader again would only repeat it."""
    incident_id = await _new_incident(store)
    counted = AskingCounted(store._js)
    seen: list[int] = []

    async def decide(history: History) -> list[Accepted]:
        seen.append(history.version)
        if len(seen) == 1:  # another writer gets in between this read and the append
            [other] = await store.append_decision(
                [accepted(incident_id)], cause="test:other", fingerprint="",
                expected_version=history.version,
            )  # fmt: skip
            seen.append(other.sequence)
        return [accepted(incident_id)]

    decided = await decide_and_append(counted, incident_id, Cause("test:mine"), decide)
    first, other, second = seen
    assert second == other > first
    assert decided.history.version == other and len(decided.written) == 1
    assert counted.asked == 0


def test_fingerprints_ignore_key_order_but_not_values() -> None:
    assert fingerprint_of("a", {"x": 1, "y": 2}) == fingerprint_of("a", {"y": 2, "x": 1})
    assert fingerprint_of("a", {"x": 1}) != fingerprint_of("a", {"x": 2})
    assert fingerprint_of("a", {"x": 1}) != fingerprint_of("b", {"x": 1})


def test_a_cause_without_fingerprint_is_matched_by_key_alone() -> None:
    history = History("I", (), {"k": "abc"})
    assert applied_before(history, Cause("k"))
    assert not applied_before(history, Cause("other"))
    with pytest.raises(IdempotencyConflict):
        applied_before(history, Cause("k", "def"))


async def test_history_reads_name_each_subject_literally(store: EventStore) -> None:
    """Many events of one type and one of another come back complete and in order."""
    incident_id = await _new_incident(store)
    version = (await store.load(incident_id)).version
    for n in range(300):
        written = await store.append_decision(
            [accepted(incident_id)],
            cause=f"test:many:{n}",
            fingerprint="",
            expected_version=version,
        )
        version = written[-1].sequence
    history = await store.load(incident_id)
    assert len(history) == 301
    assert [s.sequence for s in history.events] == sorted(s.sequence for s in history.events)
    assert history.version == version


async def test_more_decisions_at_once_than_the_server_takes_batches_are_all_stored(
    store: EventStore,
) -> None:
    """nats-server takes 50 atomic batches in flight per stream and refuses the rest (429,
    "atomic publish too many inflight"): a busy consumer's concurrent decisions must wait
    their turn, not fail and be redelivered (each retry another history read)."""
    incidents = [await _new_incident(store) for _ in range(120)]
    versions = [(await store.load(incident_id)).version for incident_id in incidents]
    written = await asyncio.gather(
        *(
            store.append_decision(
                [accepted(incident_id), accepted(incident_id)],
                cause=f"test:busy:{incident_id}",
                fingerprint="",
                expected_version=version,
            )
            for incident_id, version in zip(incidents, versions, strict=True)
        )
    )
    assert [len(each) for each in written] == [2] * len(incidents)
