"""The projector primitive against a real nats-server, with a small in-memory projection.

The in-memory projection stores its position with its rows under one lock, the way a database
projection stores them in one transaction; the reporting service's tests cover the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry

from civicgrid.events import streams, subjects
from civicgrid.events.dead_letters import DeadLetter, DeadLetterPublisher
from civicgrid.events.ids import new_incident_id
from civicgrid.events.projector import (
    PositionMoved,
    ProjectedEvent,
    Projector,
    ProjectorMetrics,
)
from civicgrid.events.standing_pull import StandingPull
from civicgrid.events.store import EventStore
from civicgrid.servicekit.natsserver import EmbeddedNats
from tests.support.events.factories import accepted, reported
from tests.support.events.waiting import eventually


@dataclass
class MemoryProjection:
    name: str = "memory"
    position: int = 0
    seen: dict[int, str] = field(default_factory=dict)  # sequence -> event type
    applies: int = 0
    gate: asyncio.Event | None = None

    async def load_position(self) -> int:
        return self.position

    async def apply(self, events: Sequence[ProjectedEvent], *, after: int, position: int) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if after != self.position:
            raise PositionMoved(f"{after} != {self.position}")
        for item in events:
            assert item.sequence not in self.seen, "an event applied twice"
            self.seen[item.sequence] = item.event.event_type
        self.position = position
        self.applies += 1


def projector_for(projection: MemoryProjection, js: JetStreamContext) -> Projector:
    return Projector(
        projection,
        lambda: js,
        DeadLetterPublisher(lambda: js, "projector-tests"),
        ProjectorMetrics.create(CollectorRegistry()),
        idle_wait_s=0.2,
    )


async def append_life(store: EventStore) -> tuple[str, int]:
    incident_id = new_incident_id()
    written = await store.append_decision(
        [reported(incident_id), accepted(incident_id)],
        cause=f"test:{incident_id}",
        fingerprint="",
        expected_version=0,
    )
    return incident_id, written[-1].sequence


async def stream_end(js: JetStreamContext) -> int:
    return int((await js.stream_info(streams.INCIDENTS)).state.last_seq)


async def test_a_projector_catches_up_then_follows_live_events(
    js: JetStreamContext, store: EventStore
) -> None:
    await append_life(store)
    end = await stream_end(js)
    projection = MemoryProjection()
    projector = projector_for(projection, js)
    await projector.start()
    try:
        await eventually(lambda: _true(projector.caught_up), what="caught up")
        assert projection.position >= end
        assert projector.problem() is None
        _, sequence = await append_life(store)
        assert await projector.wait_for(sequence, timeout_s=10)
        assert projection.seen[sequence] == "accepted"
        assert projector.lag == 0
    finally:
        await projector.stop()


async def test_readiness_says_catching_up_with_the_lag_until_caught_up(
    js: JetStreamContext, store: EventStore
) -> None:
    await append_life(store)
    projection = MemoryProjection(gate=asyncio.Event())
    projector = projector_for(projection, js)
    await projector.start()
    try:
        problem = projector.problem()
        assert problem is not None and problem.startswith("catching up: ")
        assert int(problem.removeprefix("catching up: ").split()[0]) == await stream_end(js)
        assert projection.gate is not None
        projection.gate.set()
        await eventually(lambda: _true(projector.problem() is None), what="ready")
    finally:
        await projector.stop()


async def test_a_restarted_projector_resumes_from_the_stored_position_without_repeats(
    js: JetStreamContext, store: EventStore
) -> None:
    projection = MemoryProjection()
    first = projector_for(projection, js)
    await first.start()
    await eventually(lambda: _true(first.caught_up), what="caught up")
    await first.stop()
    resumed_from = projection.position
    _, sequence = await append_life(store)
    second = projector_for(projection, js)
    await second.start()
    try:
        assert await second.wait_for(sequence, timeout_s=10)
        # MemoryProjection asserts no sequence is applied twice; nothing before resumed_from
        # was read again.
        assert min(s for s in projection.seen if s > resumed_from) == resumed_from + 1
    finally:
        await second.stop()


async def test_an_unreadable_event_goes_to_the_dlq_and_the_projection_moves_past_it(
    js: JetStreamContext, store: EventStore
) -> None:
    projection = MemoryProjection(name="dlq-check")
    projector = projector_for(projection, js)
    await projector.start()
    try:
        bad = await js.publish(
            subjects.incident_event(new_incident_id(), "reported"),
            b'{"event_type": "reported", "schema_version": 2}',
            stream=streams.INCIDENTS,
        )
        _, after = await append_life(store)
        assert await projector.wait_for(after, timeout_s=10)
        assert bad.seq not in projection.seen
        letter = await _dead_letter_for(js, bad.seq)
        assert letter.reason == "unreadable"
        assert letter.consumer == "projector-dlq-check"
        assert "schema violation" in letter.error
    finally:
        await projector.stop()


async def _dead_letter_for(js: JetStreamContext, sequence: int) -> DeadLetter:
    subscription = await js.subscribe(
        subjects.dlq("projector-tests"),
        stream=streams.DLQ,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        while True:
            msg = await subscription.next_msg(timeout=5)
            letter = DeadLetter.model_validate_json(msg.data)
            if letter.original_sequence == sequence:
                return letter
    finally:
        await subscription.unsubscribe()


async def _true(value: bool) -> bool:
    return value


async def test_a_projector_whose_consumer_is_deleted_makes_another_from_its_position(
    js: JetStreamContext, store: EventStore
) -> None:
    projection = MemoryProjection(name="recreated")
    projector = projector_for(projection, js)
    projector.retry_s = 0.05
    await projector.start()
    try:
        await eventually(lambda: _true(projector.caught_up), what="caught up")
        first = projector.consumer_name
        assert first is not None
        await js.delete_consumer(streams.INCIDENTS, first)
        _, sequence = await append_life(store)
        assert await projector.wait_for(sequence, timeout_s=15)
        assert projector.consumer_name != first
        assert projector.failures >= 1
        # MemoryProjection asserts that nothing was applied twice across the two consumers.
        assert projection.seen[sequence] == "accepted"
    finally:
        await projector.stop()


async def test_a_projector_following_a_trickle_makes_few_pull_requests(
    js: JetStreamContext, store: EventStore
) -> None:
    projection = MemoryProjection(name="trickle")
    projector = projector_for(projection, js)
    projector.batch_size = 100
    await projector.start()
    requests = 0

    async def count(msg: object) -> None:
        nonlocal requests
        requests += 1

    try:
        await eventually(
            lambda: _true(projector.caught_up and projector.consumer_name is not None),
            what="caught up and reading",
        )
        name = projector.consumer_name
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{streams.INCIDENTS}.{name}"
        counting = await js._nc.subscribe(subject, cb=count)
        await js._nc.flush()
        # One life at a time, each projected before the next: the steady trickle that cost a
        # request or two per batch of one or two events.
        for _ in range(60):
            _, sequence = await append_life(store)
            assert await projector.wait_for(sequence, timeout_s=10)
        await counting.unsubscribe()
    finally:
        await projector.stop()
    assert projector.consumer_name == name  # the same consumer throughout
    # 120 events, credit 100 topped up at half: a request per 50 events or so.
    assert requests <= 5, requests


class InTransit:
    """Loses one message on its way from the server to the projector, as a dropped connection
    does: the stream sequence set in ``lose``, once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lose: int | None = None
        self.dropped: list[int] = []
        on_message = StandingPull._on_message

        async def lose_one(pull: StandingPull, msg: Msg) -> None:
            # A stream message has an ack subject (its metadata); a status has none.
            lost = msg.reply and msg.metadata.sequence.stream == self.lose
            if lost and not self.dropped:
                self.dropped.append(self.lose)
                return
            await on_message(pull, msg)

        monkeypatch.setattr(StandingPull, "_on_message", lose_one)


@pytest.fixture
def in_transit(monkeypatch: pytest.MonkeyPatch) -> InTransit:
    return InTransit(monkeypatch)


async def test_an_event_lost_on_its_way_to_the_projector_is_read_again_not_skipped(
    js: JetStreamContext, store: EventStore, in_transit: InTransit
) -> None:
    # The projector's consumer acks nothing, so the server counts a message as done once sent.
    # When the connection it travels on drops (a cluster node killed, in the chaos suite), the
    # message is gone, and the consumer goes on with the next one; once, reporting's figures
    # stayed short of a recount by the two incidents lost that way.
    projection = MemoryProjection(name="lossy")
    projector = projector_for(projection, js)
    await projector.start()
    try:
        await eventually(lambda: _true(projector.caught_up), what="caught up")
        lost = in_transit.lose = await stream_end(js) + 1
        await append_life(store)
        _, last = await append_life(store)
        assert await projector.wait_for(last, timeout_s=15)
        assert in_transit.dropped == [lost]
        assert sorted(projection.seen)[-4:] == list(range(lost, last + 1))
    finally:
        await projector.stop()


async def test_the_last_event_lost_with_a_dropped_connection_is_read_again_without_a_next_one(
    nats_server: EmbeddedNats, store: EventStore, in_transit: InTransit
) -> None:
    # A hole shows only when a later message arrives. When the lost one is the last for a
    # while, the connection that dropped is the sign: the projector reads again from what it
    # stored instead of asking the same consumer for more, which would never send it.
    client = await nats.connect(nats_server.client_url, reconnect_time_wait=0.1)
    js = client.jetstream()
    projection = MemoryProjection(name="lossy-tail")
    projector = projector_for(projection, js)
    projector.retry_s = 0.05
    await projector.start()
    try:
        await eventually(lambda: _true(projector.caught_up), what="caught up")
        # The second of the two events appended next.
        in_transit.lose = await stream_end(js) + 2
        _, last = await append_life(store)
        assert last == in_transit.lose
        await eventually(lambda: _true(in_transit.dropped == [last]), what="the last event lost")
        reconnects = client.stats["reconnects"]
        client._transport.close()  # type: ignore[union-attr]  # the connection drops
        await eventually(lambda: _true(client.stats["reconnects"] > reconnects), what="back")
        assert await projector.wait_for(last, timeout_s=15)
        assert projection.seen[last] == "accepted"
    finally:
        await projector.stop()
        await client.close()
