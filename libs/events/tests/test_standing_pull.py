"""The pull loop's standing request against a real nats-server: few requests, nothing stranded.

Requests are counted where the server sees them: a plain subscription on the consumer's
``$JS.API.CONSUMER.MSG.NEXT`` subject gets a copy of every pull request.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import nats
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from prometheus_client import CollectorRegistry

from civicgrid.events import streams
from civicgrid.events.base import IncidentEvent
from civicgrid.events.consumer import (
    ConsumerMetrics,
    ConsumerSpec,
    Delivery,
    EventConsumer,
    EventHandler,
)
from civicgrid.events.dead_letters import DeadLetterPublisher
from civicgrid.events.pull_loop import PullLoop
from civicgrid.events.reconcile import reconcile_consumer
from civicgrid.events.store import EventStore
from civicgrid.events.streams import ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats
from tests.support.events.dead_letters import dead_letters_for
from tests.support.events.factories import reported
from tests.support.events.waiting import eventually


async def _true(value: bool) -> bool:
    return value


class RequestCounter:
    def __init__(self) -> None:
        self.count = 0

    async def on_request(self, msg: Msg) -> None:
        self.count += 1


@pytest_asyncio.fixture
async def count_requests(nc: NatsClient) -> AsyncIterator[Callable[[str], RequestCounter]]:
    subscriptions = []

    async def counting(durable: str) -> RequestCounter:
        counter = RequestCounter()
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{streams.INCIDENTS}.{durable}"
        subscriptions.append(await nc.subscribe(subject, cb=counter.on_request))
        await nc.flush()
        return counter

    yield counting  # type: ignore[misc]
    for subscription in subscriptions:
        await subscription.unsubscribe()


def _spec(name: str, incident_ids: list[str] | None = None, **overrides: object) -> ConsumerSpec:
    subjects = (
        tuple(f"incident.{each}.reported" for each in incident_ids)
        if incident_ids
        else ("incident.*.reported",)
    )
    return ConsumerSpec(
        service=name,
        durable=f"{name}-c",
        filter_subjects=subjects,
        deliver_policy=DeliverPolicy.NEW,
        **overrides,  # type: ignore[arg-type]
    )


async def _loop(nc: NatsClient, spec: ConsumerSpec, handler: EventHandler) -> PullLoop:
    js = nc.jetstream()
    consumer = EventConsumer(
        spec,
        handler,
        DeadLetterPublisher(lambda: js, spec.service),
        ConsumerMetrics.create(CollectorRegistry()),
    )
    loop = PullLoop(consumer, js)
    await loop.start()
    return loop


async def test_many_events_cost_a_bounded_number_of_pull_requests(
    nc: NatsClient, store: EventStore, count_requests: Callable[[str], RequestCounter]
) -> None:
    events = [reported() for _ in range(200)]
    handled: Counter[str] = Counter()

    async def record(event: IncidentEvent, delivery: Delivery) -> None:
        handled[event.incident_id] += 1

    spec = _spec("fewrequests", batch_size=64)
    counter = await count_requests(spec.durable)  # type: ignore[misc]
    loop = await _loop(nc, spec, record)
    try:
        # Half one at a time, each handled before the next is sent (the steady trickle that
        # cost a request or two per event), half in a burst.
        for event in events[:100]:
            await store.append(event, msg_id=event.event_id, expected_version=0)
            await eventually(lambda e=event: _true(handled[e.incident_id] > 0), what="handled")
        for event in events[100:]:
            await store.append(event, msg_id=event.event_id, expected_version=0)
        await eventually(lambda: _true(len(handled) == len(events)), what="all handled")
    finally:
        await loop.stop()
        await nc.jetstream().delete_consumer(streams.INCIDENTS, spec.durable)
    assert set(handled.values()) == {1}
    # Credit 64, topped up at half: about one request per 32 events, plus the first.
    assert counter.count <= 12, counter.count
    assert loop.requests == counter.count


async def test_what_waits_behind_a_slow_batch_is_not_redelivered_for_waiting(
    nc: NatsClient, store: EventStore
) -> None:
    first, *behind = events = [reported() for _ in range(4)]
    ids = [event.incident_id for event in events]
    calls: list[tuple[str, int]] = []

    async def slow_first(event: IncidentEvent, delivery: Delivery) -> None:
        calls.append((event.incident_id, delivery.deliveries))
        if event.incident_id == first.incident_id:
            await asyncio.sleep(3.5)  # three and a half ack waits

    spec = _spec("waitbehind", ids, ack_wait_s=1.0)
    js = nc.jetstream()
    replicas = [await _loop(nc, spec, slow_first)]
    try:
        await store.append(first, msg_id=first.event_id, expected_version=0)
        await eventually(lambda: _true(len(calls) == 1), what="the slow batch running")
        for event in behind:
            await store.append(event, msg_id=event.event_id, expected_version=0)

        # Delivered to the busy replica, waiting in its client behind the slow batch; an idle
        # replica would get them at once if the server redelivered them.
        await eventually(
            lambda: _consumer_counts(js, spec.durable, pending=0, ack_pending=len(events)),
            what="all delivered to the busy replica",
        )
        replicas.append(await _loop(nc, spec, slow_first))

        await eventually(
            lambda: _consumer_counts(js, spec.durable, pending=0, ack_pending=0),
            within_s=15,
            what="all acked",
        )
    finally:
        for loop in replicas:
            await loop.stop()
        await js.delete_consumer(streams.INCIDENTS, spec.durable)
    assert sorted(calls) == sorted((each, 1) for each in ids)


async def _consumer_counts(
    js: JetStreamContext, durable: str, *, pending: int, ack_pending: int
) -> bool:
    """Whether the durable has exactly so many undelivered and delivered-unacked messages."""
    info = await js.consumer_info(streams.INCIDENTS, durable)
    return info.num_pending == pending and info.num_ack_pending == ack_pending


async def test_a_stopping_replica_gives_back_what_it_had_not_handled(
    nc: NatsClient, store: EventStore
) -> None:
    first, *behind = events = [reported() for _ in range(5)]
    ids = [event.incident_id for event in events]
    gate = asyncio.Event()
    running = asyncio.Event()
    handled_by: dict[str, list[str]] = {"a": [], "b": []}

    def handler(name: str) -> EventHandler:
        async def record(event: IncidentEvent, delivery: Delivery) -> None:
            if event.incident_id == first.incident_id:
                running.set()
                await gate.wait()
            handled_by[name].append(event.incident_id)

        return record

    # An ack wait far longer than the test: a message stranded in the stopped client would
    # reach the other replica only after it.
    spec = _spec("giveback", ids, ack_wait_s=60.0)
    js = nc.jetstream()
    a = await _loop(nc, spec, handler("a"))
    b: PullLoop | None = None
    try:
        await store.append(first, msg_id=first.event_id, expected_version=0)
        await asyncio.wait_for(running.wait(), timeout=10)
        for event in behind:
            await store.append(event, msg_id=event.event_id, expected_version=0)

        await eventually(
            lambda: _consumer_counts(js, spec.durable, pending=0, ack_pending=len(events)),
            what="all delivered to replica a",
        )
        b = await _loop(nc, spec, handler("b"))
        stopping = asyncio.create_task(a.stop())
        gate.set()  # the batch in hand finishes: a stop never abandons it
        await stopping
        await eventually(
            lambda: _true(len(handled_by["a"]) + len(handled_by["b"]) == len(events)),
            within_s=10,
            what="every event handled by one replica or the other",
        )
    finally:
        await a.stop()
        if b is not None:
            await b.stop()
        await js.delete_consumer(streams.INCIDENTS, spec.durable)
    # a finished its batch; what waited behind it went to b, long before a's ack wait.
    assert handled_by["a"] == [first.incident_id]
    assert sorted(handled_by["b"]) == sorted(e.incident_id for e in behind)


async def test_after_a_server_restart_the_loop_asks_again_and_goes_on(
    own_nats: EmbeddedNats, tmp_path: Path
) -> None:
    client = await nats.connect(own_nats.client_url, max_reconnect_attempts=-1)
    js = client.jetstream()
    await ensure_streams(js)
    store = EventStore(js)
    handled: list[str] = []
    before, after = reported(), reported()

    async def record(event: IncidentEvent, delivery: Delivery) -> None:
        handled.append(event.incident_id)
        if handled == [before.incident_id]:
            # Killed after handling, before the ack: the server forgets the standing request
            # with everything else in memory, and never gets the ack. The suite once did this
            # by chance, killing right after `before` was handled while its ack was still in
            # the client's buffer.
            own_nats.kill()

    loop = await _loop(client, _spec("restarted", ack_wait_s=1.0), record)
    try:
        await store.append(before, msg_id=before.event_id, expected_version=0)
        await eventually(lambda: _true(before.incident_id in handled), what="handled before")
        own_nats.start(log_file=tmp_path / "nats.log", die_with_parent=True)
        await eventually(lambda: _true(client.is_connected), what="reconnected")
        await eventually(lambda: _stored(store, after), what="stored after the restart")
        await eventually(lambda: _true(after.incident_id in handled), what="handled after")
        # At least once: what was handled but never acked comes again.
        await eventually(lambda: _true(handled.count(before.incident_id) >= 2), what="before again")
    finally:
        await loop.stop()
        await client.close()
    assert handled[0] == before.incident_id
    assert handled.count(after.incident_id) == 1


async def _stored(store: EventStore, event: IncidentEvent) -> bool:
    # JetStream answers a little after the connection is back: append until it takes it.
    try:
        await store.append(event, msg_id=event.event_id, expected_version=0)
    except Exception:
        return False
    return True


async def test_two_replicas_with_standing_requests_share_the_work_once_each(
    nc: NatsClient, store: EventStore
) -> None:
    events = [reported() for _ in range(120)]
    handled_by: dict[str, Counter[str]] = {"a": Counter(), "b": Counter()}

    def handler(name: str) -> EventHandler:
        async def record(event: IncidentEvent, delivery: Delivery) -> None:
            await asyncio.sleep(0.002)  # some work, so that a burst queues up
            handled_by[name][event.incident_id] += 1

        return record

    spec = _spec("sharing", batch_size=16)
    js = nc.jetstream()
    replicas = [await _loop(nc, spec, handler(name)) for name in ("a", "b")]
    try:
        for event in events:
            await store.append(event, msg_id=event.event_id, expected_version=0)
        mine = {event.incident_id for event in events}

        async def all_handled() -> bool:
            return mine <= set(handled_by["a"]) | set(handled_by["b"])

        await eventually(all_handled, what="every event handled")
    finally:
        for loop in replicas:
            await loop.stop()
        await js.delete_consumer(streams.INCIDENTS, spec.durable)
    both = handled_by["a"] + handled_by["b"]
    assert all(both[incident_id] == 1 for incident_id in mine)
    assert handled_by["a"] and handled_by["b"], "one replica did all the work"


async def test_a_lone_event_on_an_idle_loop_is_handled_at_once(
    nc: NatsClient, store: EventStore
) -> None:
    handled = asyncio.Event()
    event = reported()

    async def record(seen: IncidentEvent, delivery: Delivery) -> None:
        if seen.incident_id == event.incident_id:
            handled.set()

    spec = _spec("lone", [event.incident_id])
    loop = await _loop(nc, spec, record)
    try:
        # Idle past one wait of the loop and one top-up: the request stands, and answers as
        # the event arrives, not when some fetch's timeout ends.
        await asyncio.sleep(PullLoop.IDLE_WAIT_S + 0.5)
        started = time.monotonic()
        await store.append(event, msg_id=event.event_id, expected_version=0)
        await asyncio.wait_for(handled.wait(), timeout=30)
        took = time.monotonic() - started
    finally:
        await loop.stop()
        await nc.jetstream().delete_consumer(streams.INCIDENTS, spec.durable)
    # A promptness check with its own clock: far below the loop's idle wait.
    assert took < PullLoop.IDLE_WAIT_S / 2, took


async def test_a_dead_letter_only_delivery_waiting_at_stop_goes_to_the_dlq_not_back(
    nc: NatsClient, store: EventStore
) -> None:
    blocker, spent = reported(), reported()
    gate = asyncio.Event()
    running = asyncio.Event()

    async def record(event: IncidentEvent, delivery: Delivery) -> None:
        if event.incident_id == blocker.incident_id:
            running.set()
            await gate.wait()

    # One attempt: the second delivery of a message only carries it to the DLQ. A NAK on the
    # server's last delivery would drop it for good; the stop must dead-letter it instead.
    ids = [blocker.incident_id, spent.incident_id]
    spec = _spec("spentatstop", ids, max_deliver=1, ack_wait_s=1.0)
    js = nc.jetstream()
    await reconcile_consumer(js, spec.stream, spec.consumer_config())
    # Its one attempt taken by a client that never answers: the ack wait redelivers it.
    raw = await js.pull_subscribe_bind(spec.durable, spec.stream)
    await store.append(spent, msg_id=spent.event_id, expected_version=0)
    assert len(await raw.fetch(1, timeout=5)) == 1
    await raw.unsubscribe()
    loop = await _loop(nc, spec, record)
    try:
        await store.append(blocker, msg_id=blocker.event_id, expected_version=0)
        await asyncio.wait_for(running.wait(), timeout=10)

        async def redelivered_behind_the_batch() -> bool:
            info = await js.consumer_info(streams.INCIDENTS, spec.durable)
            return info.num_redelivered == 1 and info.num_ack_pending == 2

        await eventually(redelivered_behind_the_batch, what="the spent one waiting")
        stopping = asyncio.create_task(loop.stop())
        gate.set()
        await stopping
        letters = await dead_letters_for(nc.jetstream(), spec.service)
    finally:
        await loop.stop()
        await js.delete_consumer(streams.INCIDENTS, spec.durable)
    assert [
        letter.reason for letter in letters if spent.incident_id in letter.original_subject
    ] == ["retries_exhausted"]
