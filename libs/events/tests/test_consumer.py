"""The consumer helper against a real nats-server: DLQ, retries, redelivery after a crash."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, DeliverPolicy, StreamConfig
from prometheus_client import CollectorRegistry

from civicgrid.events import streams
from civicgrid.events.base import IncidentEvent
from civicgrid.events.consumer import (
    ConsumerMetrics,
    ConsumerSpec,
    Decoded,
    Delivery,
    EventConsumer,
    EventHandler,
    PermanentFailure,
)
from civicgrid.events.dead_letters import DeadLetter, DeadLetterPublisher
from civicgrid.events.pull_loop import PullLoop
from civicgrid.events.store import EventStore
from civicgrid.servicekit.natsserver import EmbeddedNats
from tests.support.events.dead_letters import dead_letters_for
from tests.support.events.factories import accepted, reported
from tests.support.events.waiting import eventually


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, event: IncidentEvent, delivery: Delivery) -> None:
        if "fail-always" in event.correlation_id:
            raise RuntimeError("the database is down")
        if "reject" in event.correlation_id:
            raise PermanentFailure("category retired")
        if "fail-once" in event.correlation_id and delivery.deliveries == 1:
            raise RuntimeError("transient")
        self.seen.append((event.incident_id, delivery.deliveries))


@pytest_asyncio.fixture
async def consuming(
    nc: NatsClient, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Recorder, str]]:
    # Each test has its own service name, durable and DLQ subject; the consumer sees every
    # reported event in the stream, and assertions look only at the test's own incidents.
    service = request.node.name.removeprefix("test_")[:40].replace("_", "-")
    recorder = Recorder()
    spec = ConsumerSpec(
        service=service,
        durable=f"{service}-c",
        filter_subjects=("incident.*.reported",),
        max_deliver=3,
        backoff_s=(0.05, 0.05),
    )
    loop = await start_consuming(nc, spec, recorder)
    yield recorder, service
    await loop.stop()
    await nc.jetstream().delete_consumer(streams.INCIDENTS, spec.durable)


async def start_consuming(
    nc: NatsClient,
    spec: ConsumerSpec,
    handler: EventHandler,
    dead_letters: DeadLetterPublisher | None = None,
) -> PullLoop:
    js = nc.jetstream()
    consumer = EventConsumer(
        spec,
        handler,
        dead_letters or DeadLetterPublisher(lambda: js, spec.service),
        ConsumerMetrics.create(CollectorRegistry()),
    )
    loop = PullLoop(consumer, js)
    await loop.start()
    return loop


async def test_a_poison_message_goes_to_the_dlq_and_the_next_is_still_handled(
    consuming: tuple[Recorder, str], nc: NatsClient, store: EventStore
) -> None:
    recorder, service = consuming
    js = nc.jetstream()
    await js.publish("incident.POISON1.reported", b"{not json", stream=streams.INCIDENTS)
    after = reported()
    await store.append(after, msg_id=after.event_id, expected_version=0)

    await eventually(
        lambda: _async((after.incident_id, 1) in recorder.seen), what="next message handled"
    )
    letters = await eventually(lambda: dead_letters_for(js, service), what="dead letter")
    poison = [
        letter for letter in letters if letter.original_subject == "incident.POISON1.reported"
    ]
    assert len(poison) == 1
    assert poison[0].reason == "unreadable"
    assert "not JSON" in poison[0].error
    assert poison[0].original_data() == b"{not json"
    assert poison[0].original_sequence is not None


async def test_a_schema_violation_is_dead_lettered_without_echoing_personal_data(
    consuming: tuple[Recorder, str], nc: NatsClient
) -> None:
    _, service = consuming
    js = nc.jetstream()
    bad = reported().model_dump(mode="json")
    bad["report"]["location"] = {"lon": 999, "lat": 27.5}
    await js.publish(
        f"incident.{bad['incident_id']}.reported",
        json.dumps(bad).encode(),
        stream=streams.INCIDENTS,
    )
    letters = await eventually(lambda: dead_letters_for(js, service), what="dead letter")
    mine = [letter for letter in letters if bad["incident_id"] in letter.original_subject]
    assert mine and mine[0].reason == "unreadable"
    assert "report.location.lon" in mine[0].error
    assert "13800000000" not in mine[0].error


async def test_a_failing_handler_is_retried_with_backoff_then_succeeds(
    consuming: tuple[Recorder, str], store: EventStore
) -> None:
    recorder, _ = consuming
    event = reported(correlation_id="fail-once")
    await store.append(event, msg_id=event.event_id, expected_version=0)
    await eventually(lambda: _async((event.incident_id, 2) in recorder.seen), what="retry")
    assert (event.incident_id, 1) not in recorder.seen


async def test_retries_are_bounded_and_the_last_failure_is_dead_lettered(
    consuming: tuple[Recorder, str], nc: NatsClient, store: EventStore
) -> None:
    _, service = consuming
    event = reported(correlation_id="fail-always")
    await store.append(event, msg_id=event.event_id, expected_version=0)
    letters = await eventually(
        lambda: _mine(dead_letters_for(nc.jetstream(), service), event.incident_id),
        what="dead letter after retries",
    )
    assert letters[0].reason == "retries_exhausted"
    assert letters[0].deliveries == 3
    assert "the database is down" in letters[0].error


async def test_a_permanent_failure_is_dead_lettered_at_once(
    consuming: tuple[Recorder, str], nc: NatsClient, store: EventStore
) -> None:
    _, service = consuming
    event = reported(correlation_id="reject")
    await store.append(event, msg_id=event.event_id, expected_version=0)
    letters = await eventually(
        lambda: _mine(dead_letters_for(nc.jetstream(), service), event.incident_id),
        what="dead letter",
    )
    assert letters[0].reason == "rejected"
    assert letters[0].deliveries == 1


async def _async(value: bool) -> bool:
    return value


async def _mine(letters_coro: object, incident_id: str) -> list[DeadLetter]:
    letters: list[DeadLetter] = await letters_coro  # type: ignore[misc]
    return [letter for letter in letters if incident_id in letter.original_subject]


CRASHING_CONSUMER = textwrap.dedent(
    """
    import asyncio, os, sys
    import nats
    from prometheus_client import CollectorRegistry
    from civicgrid.events.consumer import ConsumerMetrics, ConsumerSpec, EventConsumer
    from civicgrid.events.pull_loop import PullLoop
    from civicgrid.events.dead_letters import DeadLetterPublisher

    url, incident_id = sys.argv[1], sys.argv[2]

    async def handler(event, delivery):
        if event.incident_id == incident_id:
            print("got", delivery.deliveries, flush=True)
            os._exit(9)  # killed mid-handling: no ack, no nak, no goodbye

    async def main():
        js = (await nats.connect(url)).jetstream()
        spec = ConsumerSpec(service="crash", durable="crash-c",
                            filter_subjects=(f"incident.{incident_id}.reported",), ack_wait_s=1.0)
        consumer = EventConsumer(spec, handler, DeadLetterPublisher(lambda: js, "crash"),
                                 ConsumerMetrics.create(CollectorRegistry()))
        await PullLoop(consumer, js).start()
        await asyncio.sleep(30)

    asyncio.run(main())
    """
)


async def test_a_consumer_killed_before_ack_gets_the_message_again(
    nats_server: EmbeddedNats, store: EventStore, nc: NatsClient
) -> None:
    event = reported()
    await store.append(event, msg_id=event.event_id, expected_version=0)
    outputs = []
    for _ in range(2):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CRASHING_CONSUMER,
            nats_server.client_url,
            event.incident_id,
            stdout=subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
        assert proc.returncode == 9
        outputs.extend(line for line in out.decode().splitlines() if line.startswith("got"))
    assert outputs == ["got 1", "got 2"]
    await nc.jetstream().delete_consumer(streams.INCIDENTS, "crash-c")


async def test_events_of_one_incident_are_handled_in_stream_order(
    nc: NatsClient, store: EventStore
) -> None:
    first = reported()
    version = (await store.append(first, msg_id=first.event_id, expected_version=0)).sequence
    followers = [accepted(first.incident_id, correlation_id=f"n{n}") for n in range(30)]
    await store.append_decision(
        followers, cause=first.event_id, fingerprint="", expected_version=version
    )
    handled: list[str] = []

    async def uneven_handler(event: IncidentEvent, delivery: Delivery) -> None:
        # Uneven work per message: without the per-incident lock, FastStream's concurrent
        # batch handling would finish these out of order.
        if event.correlation_id.endswith(("0", "2", "4")):
            await asyncio.sleep(0.005)
        handled.append(event.event_id)

    spec = ConsumerSpec(
        service="order",
        durable="order-c",
        filter_subjects=(f"incident.{first.incident_id}.*",),
        batch_size=64,
    )
    loop = await start_consuming(nc, spec, uneven_handler)
    try:
        await eventually(lambda: _async(len(handled) == 31), what="all handled")
    finally:
        await loop.stop()
    assert handled == [first.event_id, *(event.event_id for event in followers)]


async def test_a_consumer_deleted_under_the_loop_is_recreated_by_it(
    nc: NatsClient, store: EventStore
) -> None:
    seen: list[str] = []

    async def record(event: IncidentEvent, delivery: Delivery) -> None:
        seen.append(event.incident_id)

    spec = ConsumerSpec(
        service="resilient",
        durable="resilient-c",
        filter_subjects=("incident.*.reported",),
        deliver_policy=DeliverPolicy.NEW,
    )
    loop = await start_consuming(nc, spec, record)
    js = nc.jetstream()
    try:
        await js.delete_consumer(streams.INCIDENTS, spec.durable)
        event = reported()
        await store.append(event, msg_id=event.event_id, expected_version=0)
        await eventually(lambda: _async(loop.failures > 0), what="fetch failures noticed")
        assert loop.running
        # Nobody recreates it but the loop itself; what was published meanwhile is handled.
        await eventually(lambda: _async(event.incident_id in seen), what="handled after")
        assert not loop.missing
    finally:
        await loop.stop()
        await js.delete_consumer(streams.INCIDENTS, spec.durable)


@dataclass(frozen=True)
class Ping:
    target: str
    n: int


def decode_ping(msg: Msg) -> Decoded:
    body = json.loads(msg.data)  # JSONDecodeError is a ValueError
    if not isinstance(body, dict) or not isinstance(body.get("n"), int):
        raise ValueError("a ping needs an integer n")
    return Decoded(key=msg.subject.split(".")[1], value=Ping(msg.subject.split(".")[1], body["n"]))


async def test_a_custom_decoder_hands_non_incident_messages_with_their_headers(
    nc: NatsClient,
) -> None:
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="PINGS", subjects=["ping.>"]))
    seen: list[tuple[Ping, str | None]] = []

    async def record(ping: Ping, delivery: Delivery) -> None:
        seen.append((ping, delivery.headers.get("fired-by")))

    spec = ConsumerSpec(
        service="pings",
        durable="pings-c",
        stream="PINGS",
        filter_subjects=("ping.>",),
        decode=decode_ping,
    )
    loop = await start_consuming(nc, spec, record)
    try:
        await js.publish("ping.a", b'{"n": 1}', stream="PINGS", headers={"fired-by": "t1"})
        await js.publish("ping.a", b'{"n": "two"}', stream="PINGS")
        await js.publish("ping.b", b'{"n": 3}', stream="PINGS", headers={"fired-by": "t3"})
        await eventually(lambda: _async(len(seen) == 2), what="both pings handled")
        assert sorted(seen, key=lambda s: s[0].n) == [(Ping("a", 1), "t1"), (Ping("b", 3), "t3")]
        letters = await eventually(lambda: dead_letters_for(js, "pings"), what="dead letter")
        assert [(letter.reason, letter.original_stream) for letter in letters] == [
            ("unreadable", "PINGS")
        ]
        assert "integer n" in letters[0].error
    finally:
        await loop.stop()
        await js.delete_stream("PINGS")


async def test_a_changed_spec_reaches_an_existing_durable(nc: NatsClient) -> None:
    js = nc.jetstream()
    old = ConsumerSpec(
        service="reconcile",
        durable="reconcile-c",
        filter_subjects=("incident.*.reported",),
        max_deliver=3,
        ack_wait_s=5.0,
    )
    await js.add_consumer(streams.INCIDENTS, old.consumer_config())
    new = ConsumerSpec(
        service="reconcile",
        durable="reconcile-c",
        filter_subjects=("incident.*.reported", "incident.*.returned"),
        max_deliver=7,
        ack_wait_s=12.0,
    )
    loop = await start_consuming(nc, new, Recorder())
    try:
        config = (await js.consumer_info(streams.INCIDENTS, new.durable)).config
        wanted = new.consumer_config()
        assert sorted(config.filter_subjects or []) == sorted(new.filter_subjects)
        assert config.max_deliver == wanted.max_deliver
        assert config.ack_wait == wanted.ack_wait
        assert config.backoff == wanted.backoff
    finally:
        await loop.stop()
        await js.delete_consumer(streams.INCIDENTS, new.durable)


async def test_a_durable_the_server_cannot_update_is_recreated_where_it_left_off(
    nc: NatsClient,
) -> None:
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="RECREATE", subjects=["recreate.>"]))
    try:
        spec = ConsumerSpec(
            service="recreate",
            durable="recreate-c",
            stream="RECREATE",
            filter_subjects=("recreate.>",),
            decode=decode_ping,
        )
        # Created by an older release with another ack policy, which no server update changes;
        # it has already handled the first two messages.
        await js.add_consumer(
            "RECREATE",
            spec.consumer_config().evolve(ack_policy=AckPolicy.ALL, backoff=None, max_deliver=3),
        )
        for n in range(1, 5):
            await js.publish("recreate.a", json.dumps({"n": n}).encode(), stream="RECREATE")
        old = await js.pull_subscribe_bind(spec.durable, "RECREATE")
        for msg in await old.fetch(2, timeout=2):
            await msg.ack_sync()
        await old.unsubscribe()
        seen: list[int] = []

        async def record(ping: Ping, delivery: Delivery) -> None:
            seen.append(ping.n)

        loop = await start_consuming(nc, spec, record)
        try:
            info = await js.consumer_info("RECREATE", spec.durable)
            assert info.config.ack_policy == AckPolicy.EXPLICIT
            await eventually(lambda: _async(seen == [3, 4]), what="the rest handled")
        finally:
            await loop.stop()
    finally:
        await js.delete_stream("RECREATE")


async def test_a_handler_slower_than_the_ack_wait_runs_once_across_replicas(
    nc: NatsClient, store: EventStore
) -> None:
    event = reported()
    running = 0
    most_at_once = 0
    calls = 0

    async def slow(event: IncidentEvent, delivery: Delivery) -> None:
        nonlocal running, most_at_once, calls
        calls += 1
        running += 1
        most_at_once = max(most_at_once, running)
        try:
            await asyncio.sleep(3.5)  # the work itself, three and a half ack waits long
        finally:
            running -= 1

    spec = ConsumerSpec(
        service="slow",
        durable="slow-c",
        filter_subjects=(f"incident.{event.incident_id}.*",),
        ack_wait_s=1.0,
    )
    # Two replicas sharing the durable: a redelivery would go to the idle one at once.
    loops = [await start_consuming(nc, spec, slow) for _ in range(2)]
    js = nc.jetstream()
    try:
        await store.append(event, msg_id=event.event_id, expected_version=0)
        await eventually(
            lambda: _acked(js, spec.durable), within_s=15, what="the slow handler's ack"
        )
        assert (calls, most_at_once) == (1, 1)
        info = await js.consumer_info(streams.INCIDENTS, spec.durable)
        assert info.config.backoff == spec.ack_backoff()
    finally:
        for loop in loops:
            await loop.stop()
        await js.delete_consumer(streams.INCIDENTS, spec.durable)


async def _acked(js: JetStreamContext, durable: str) -> bool:
    info = await js.consumer_info(streams.INCIDENTS, durable)
    return info.delivered.stream_seq > 0 and info.num_ack_pending == 0 and info.num_pending == 0


async def test_a_later_event_held_back_on_its_last_delivery_is_dead_lettered(
    nc: NatsClient, store: EventStore
) -> None:
    js = nc.jetstream()
    failing = reported(correlation_id="fail-always")
    version = (await store.append(failing, msg_id=failing.event_id, expected_version=0)).sequence
    later = accepted(failing.incident_id)
    await store.append(later, msg_id=later.event_id, expected_version=version)
    spec = ConsumerSpec(
        service="held-back",
        durable="held-back-c",
        filter_subjects=(f"incident.{failing.incident_id}.*",),
        max_deliver=3,
        backoff_s=(0.01, 0.01),
    )
    await js.add_consumer(streams.INCIDENTS, spec.consumer_config())
    consumer = EventConsumer(
        spec,
        Recorder(),
        DeadLetterPublisher(lambda: js, spec.service),
        ConsumerMetrics.create(CollectorRegistry()),
    )
    sub = await js.pull_subscribe_bind(spec.durable, streams.INCIDENTS)
    try:
        # The later event has had more deliveries than the failing one (say its replica
        # crashed on it): it is on its last when both come in one batch.
        first, second = await sub.fetch(2, timeout=2)
        await second.nak()
        (second,) = await sub.fetch(1, timeout=2)
        await first.nak()
        await second.nak()
        # A fetch answers with what is there when it asks: the second redelivery may come after.
        batch: list[Msg] = []
        while len(batch) < 2:
            batch += await sub.fetch(2 - len(batch), timeout=2)
        batch.sort(key=lambda m: m.metadata.sequence.stream)
        assert [m.metadata.num_delivered for m in batch] == [2, 3]
        await consumer.on_batch(batch)

        letters = await eventually(
            lambda: _mine(dead_letters_for(js, spec.service), failing.incident_id),
            what="the held-back event dead-lettered",
        )
        assert [(letter.original_subject, letter.reason) for letter in letters] == [
            (f"incident.{failing.incident_id}.accepted", "held_back_retries_exhausted")
        ]
    finally:
        await sub.unsubscribe()
        await js.delete_consumer(streams.INCIDENTS, spec.durable)


@dataclass(frozen=True)
class FirstPublishFails(DeadLetterPublisher):
    failures_left: list[int] = field(default_factory=lambda: [1])

    async def publish(self, msg: Msg, *, consumer: str, reason: str, error: str) -> DeadLetter:
        if self.failures_left[0] > 0:
            self.failures_left[0] -= 1
            raise NatsTimeoutError
        return await super().publish(msg, consumer=consumer, reason=reason, error=error)


async def test_a_failed_dead_letter_publish_on_the_last_attempt_is_retried_not_lost(
    nc: NatsClient, store: EventStore
) -> None:
    js = nc.jetstream()
    event = reported(correlation_id="fail-always")
    spec = ConsumerSpec(
        service="dlq-down",
        durable="dlq-down-c",
        filter_subjects=(f"incident.{event.incident_id}.*",),
        max_deliver=2,
        backoff_s=(0.05,),
    )
    flaky = FirstPublishFails(lambda: js, spec.service)
    loop = await start_consuming(nc, spec, Recorder(), dead_letters=flaky)
    try:
        await store.append(event, msg_id=event.event_id, expected_version=0)
        letters = await eventually(
            lambda: _mine(dead_letters_for(js, spec.service), event.incident_id),
            what="the dead letter, published on a later delivery",
        )
        assert flaky.failures_left == [0]
        assert [(letter.reason, letter.deliveries) for letter in letters] == [
            ("retries_exhausted", 3)
        ]
        assert "the database is down" in letters[0].error
    finally:
        await loop.stop()
        await js.delete_consumer(streams.INCIDENTS, spec.durable)


async def test_a_retried_event_can_be_overtaken_so_handlers_must_not_rely_on_order(
    nc: NatsClient, store: EventStore
) -> None:
    """The documented promise: stream order within a batch, none across redeliveries.

    Handlers therefore fold the incident's own history (read in stream order from the store)
    instead of trusting the order their triggers arrive in.
    """
    first = reported(correlation_id="fail-once")
    handled: list[tuple[str, int]] = []
    failed = asyncio.Event()

    async def handler(event: IncidentEvent, delivery: Delivery) -> None:
        if event.correlation_id == "fail-once" and delivery.deliveries == 1:
            failed.set()
            raise RuntimeError("transient")
        handled.append((event.event_type, delivery.deliveries))

    spec = ConsumerSpec(
        service="overtaken",
        durable="overtaken-c",
        filter_subjects=(f"incident.{first.incident_id}.*",),
        backoff_s=(1.0,),
    )
    loop = await start_consuming(nc, spec, handler)
    try:
        version = (await store.append(first, msg_id=first.event_id, expected_version=0)).sequence
        await asyncio.wait_for(failed.wait(), timeout=10)
        later = accepted(first.incident_id)
        await store.append(later, msg_id=later.event_id, expected_version=version)
        await eventually(lambda: _async(len(handled) == 2), what="both handled")
        assert handled == [("accepted", 1), ("reported", 2)]
    finally:
        await loop.stop()
        await nc.jetstream().delete_consumer(streams.INCIDENTS, spec.durable)


async def test_a_decoder_that_breaks_on_a_message_dead_letters_it_as_unreadable(
    nc: NatsClient,
) -> None:
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="BROKEN", subjects=["broken.>"]))

    def careless(msg: Msg) -> Decoded:
        return Decoded(key="k", value=json.loads(msg.data)["n"])  # KeyError on {}

    handled: list[int] = []

    async def record(n: int, delivery: Delivery) -> None:
        handled.append(n)

    spec = ConsumerSpec(
        service="careless",
        durable="careless-c",
        stream="BROKEN",
        filter_subjects=("broken.>",),
        decode=careless,
    )
    loop = await start_consuming(nc, spec, record)
    try:
        await js.publish("broken.a", b"{}", stream="BROKEN")
        await js.publish("broken.a", b'{"n": 2}', stream="BROKEN")
        letters = await eventually(lambda: dead_letters_for(js, "careless"), what="dead letter")
        assert [(letter.reason, letter.error) for letter in letters] == [
            ("unreadable", "KeyError: 'n'")
        ]
        await eventually(lambda: _async(handled == [2]), what="the next one handled")
    finally:
        await loop.stop()
        await js.delete_stream("BROKEN")


async def test_a_retry_comes_after_its_own_pause_despite_the_server_back_off(
    nc: NatsClient, store: EventStore
) -> None:
    """nats-server adds the growth of its back-off to a NAK's delay; the consumer takes it off.

    Uncorrected, the third attempt here would come 6 s after the second instead of 3 s.
    """
    event = reported()
    attempts: list[float] = []

    async def failing_twice(event: IncidentEvent, delivery: Delivery) -> None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) < 3:
            raise RuntimeError("not yet")

    spec = ConsumerSpec(
        service="paced",
        durable="paced-c",
        filter_subjects=(f"incident.{event.incident_id}.*",),
        backoff_s=(3.0, 3.0),
        max_deliver=3,
    )
    loop = await start_consuming(nc, spec, failing_twice)
    try:
        await store.append(event, msg_id=event.event_id, expected_version=0)
        await eventually(lambda: _async(len(attempts) == 3), within_s=15, what="third attempt")
        pauses = [later - earlier for earlier, later in itertools.pairwise(attempts)]
        assert all(2.5 < pause < 4.5 for pause in pauses), pauses
    finally:
        await loop.stop()
        await nc.jetstream().delete_consumer(streams.INCIDENTS, spec.durable)


async def test_a_hung_handler_is_cancelled_after_its_time_and_retried(
    nc: NatsClient, store: EventStore
) -> None:
    event = reported()
    outcomes: list[str] = []
    never = asyncio.Event()

    async def hangs_once(event: IncidentEvent, delivery: Delivery) -> None:
        if delivery.deliveries == 1:
            try:
                await never.wait()
            except asyncio.CancelledError:
                outcomes.append("cancelled")
                raise
        outcomes.append(f"handled on delivery {delivery.deliveries}")

    spec = ConsumerSpec(
        service="hung",
        durable="hung-c",
        filter_subjects=(f"incident.{event.incident_id}.*",),
        handler_timeout_s=0.5,
        backoff_s=(0.05,),
    )
    loop = await start_consuming(nc, spec, hangs_once)
    try:
        await store.append(event, msg_id=event.event_id, expected_version=0)
        await eventually(lambda: _async(len(outcomes) == 2), what="the retry")
        assert outcomes == ["cancelled", "handled on delivery 2"]
    finally:
        await loop.stop()
        await nc.jetstream().delete_consumer(streams.INCIDENTS, spec.durable)
