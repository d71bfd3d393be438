"""The event store against a real nats-server: concurrency, idempotency, order."""

from __future__ import annotations

import asyncio

import pytest

from civicgrid.events.incident_events import Accepted, Reported
from civicgrid.events.store import NO_EVENTS_YET, ConcurrencyConflict, EventStore
from tests.support.events.factories import accepted, reported


async def test_history_of_a_new_incident_is_empty(store: EventStore) -> None:
    history = await store.load("NEVER-WRITTEN")
    assert len(history) == 0
    assert history.version == NO_EVENTS_YET


async def test_history_comes_back_in_order(store: EventStore) -> None:
    first = reported()
    result = await store.append(first, msg_id=f"{first.event_id}", expected_version=0)
    version = result.sequence
    written = [first]
    for n in range(5):
        event = accepted(first.incident_id, correlation_id=f"corr-{n}")
        version = (
            await store.append(event, msg_id=event.event_id, expected_version=version)
        ).sequence
        written.append(event)
    history = await store.load(first.incident_id)
    assert [event.event_id for event in history] == [event.event_id for event in written]
    assert isinstance(history.events[0].event, Reported)
    assert all(isinstance(stored.event, Accepted) for stored in history.events[1:])
    assert history.version == version


async def test_concurrent_appends_to_one_incident_exactly_one_wins(store: EventStore) -> None:
    first = reported()
    base = (await store.append(first, msg_id=first.event_id, expected_version=0)).sequence
    contenders = [accepted(first.incident_id, correlation_id=f"w{n}") for n in range(8)]
    outcomes = await asyncio.gather(
        *(store.append(e, msg_id=e.event_id, expected_version=base) for e in contenders),
        return_exceptions=True,
    )
    wins = [o for o in outcomes if not isinstance(o, BaseException)]
    conflicts = [o for o in outcomes if isinstance(o, ConcurrencyConflict)]
    assert len(wins) == 1
    assert len(conflicts) == len(contenders) - 1
    assert len(await store.load(first.incident_id)) == 2


async def test_a_new_incident_can_be_created_only_once(store: EventStore) -> None:
    first = reported()
    await store.append(first, msg_id=first.event_id, expected_version=0)
    again = reported(incident_id=first.incident_id)
    with pytest.raises(ConcurrencyConflict):
        await store.append(again, msg_id=again.event_id, expected_version=0)


async def test_a_retried_append_with_the_same_message_id_is_stored_once(store: EventStore) -> None:
    first = reported()
    one = await store.append(first, msg_id="cmd-42", expected_version=0)
    # The retry carries the same expectation: dedup must win before the concurrency check.
    two = await store.append(first, msg_id="cmd-42", expected_version=0)
    assert not one.duplicate
    assert two.duplicate
    assert two.sequence == one.sequence
    assert len(await store.load(first.incident_id)) == 1


async def test_events_carry_cloudevents_headers(store: EventStore, js) -> None:  # type: ignore[no-untyped-def]
    first = reported()
    result = await store.append(first, msg_id=first.event_id, expected_version=0)
    raw = await js.get_msg("INCIDENTS", seq=result.sequence)
    headers = raw.headers or {}
    assert headers["ce-id"] == first.event_id
    assert headers["ce-type"] == "cn.civicgrid.incident.reported.v2"
    assert headers["ce-subject"] == first.incident_id
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-source"] == "/civicgrid/tests"


async def test_a_retried_unconditional_append_is_stored_once(store: EventStore) -> None:
    first = reported()
    await store.append(first, msg_id=first.event_id, expected_version=0)
    note = accepted(first.incident_id)
    one = await store.append(note, msg_id="handler-x:evt-1", expected_version=None)
    two = await store.append(note, msg_id="handler-x:evt-1", expected_version=None)
    assert (one.duplicate, two.duplicate) == (False, True)
    assert len(await store.load(first.incident_id)) == 2


async def test_a_retry_after_others_appended_is_still_recognised(store: EventStore) -> None:
    first = reported()
    base = (await store.append(first, msg_id="create-1", expected_version=0)).sequence
    mine = accepted(first.incident_id)
    original = await store.append(mine, msg_id="cmd-accept-1", expected_version=base)
    other = accepted(first.incident_id)
    await store.append(other, msg_id="cmd-other", expected_version=original.sequence)
    retry = await store.append(mine, msg_id="cmd-accept-1", expected_version=base)
    assert retry.duplicate
    assert retry.sequence == original.sequence
    assert len(await store.load(first.incident_id)) == 3
