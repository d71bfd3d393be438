"""Timers as JetStream message schedules, on the real nats-server (ADR-51)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from civicgrid.events import streams, timers
from civicgrid.events.ids import new_incident_id
from civicgrid.events.timers import TimerFiring
from tests.support.events.waiting import eventually


def firing(incident_id: str, stage: str, in_s: float, version: int = 1) -> TimerFiring:
    return TimerFiring(
        incident_id=incident_id,
        clock="resolve",
        stage=stage,
        clock_version=version,
        fire_at=datetime.now(UTC) + timedelta(seconds=in_s),
    )


class Firings:
    """Everything fired for one incident, read by a pull consumer of its own."""

    def __init__(self, js: JetStreamContext, incident_id: str) -> None:
        self.js = js
        self.incident_id = incident_id
        self.received: list[tuple[datetime, Msg]] = []
        self._task: asyncio.Task[None] | None = None
        self._subscription: JetStreamContext.PullSubscription | None = None

    async def start(self) -> None:
        self._subscription = subscription = await self.js.pull_subscribe(
            f"sla.fired.{self.incident_id}.>",
            durable=f"t-{self.incident_id}",
            stream=streams.SLA_TIMERS,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL),
        )

        async def pull() -> None:
            while True:
                try:
                    batch = await subscription.fetch(10, timeout=0.5)
                except TimeoutError:
                    continue
                for msg in batch:
                    self.received.append((datetime.now(UTC), msg))
                    await msg.ack()

        self._task = asyncio.create_task(pull())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._subscription is not None:
            # A fetch cut short by the cancel leaves its reply in the inbox's queue; a
            # subscription left behind on the session's connection holds its drain for the whole
            # drain timeout (30 s) at the end of the worker's session.
            await self._subscription.unsubscribe()
        await self.js.delete_consumer(streams.SLA_TIMERS, f"t-{self.incident_id}")

    def stages(self) -> list[str]:
        return [timers.decode_firing(msg).stage for _, msg in self.received]

    async def wait_for(self, count: int, within_s: float = 10.0) -> list[tuple[datetime, Msg]]:
        async def probe() -> list[tuple[datetime, Msg]] | None:
            return self.received if len(self.received) >= count else None

        return await eventually(probe, within_s=within_s, what=f"{count} firing(s)")


@pytest_asyncio.fixture
async def fired(js: JetStreamContext) -> AsyncIterator[Firings]:
    recorder = Firings(js, new_incident_id())
    await recorder.start()
    yield recorder
    await recorder.stop()


async def test_a_schedule_fires_at_its_time_not_before(
    js: JetStreamContext, fired: Firings
) -> None:
    armed = firing(fired.incident_id, "breach", 1.0)
    await timers.arm(js, armed)
    assert await timers.pending_subjects(js, fired.incident_id) == {armed.schedule_subject}
    [(received_at, msg)] = await fired.wait_for(1)
    decoded = timers.decode_firing(msg)
    assert decoded == armed
    assert received_at >= armed.fire_at
    assert (received_at - armed.fire_at).total_seconds() < 2.0
    assert msg.headers is not None and msg.headers["Nats-Scheduler"] == armed.schedule_subject
    # The schedule is gone once fired: nothing waits for this deadline any more.
    assert await timers.pending_subjects(js, fired.incident_id) == set()


async def test_re_arming_replaces_the_schedule(js: JetStreamContext, fired: Firings) -> None:
    await timers.arm(js, firing(fired.incident_id, "breach", 0.8, version=1))
    later = firing(fired.incident_id, "breach", 1.6, version=2)
    await timers.arm(js, later)
    control = firing(fired.incident_id, "warning", 2.4)
    await timers.arm(js, control)
    await fired.wait_for(2)
    assert [timers.decode_firing(m).clock_version for _, m in fired.received] == [2, 1]
    assert fired.stages() == ["breach", "warning"]


async def test_a_cancelled_schedule_never_fires(js: JetStreamContext, fired: Firings) -> None:
    await timers.arm(js, firing(fired.incident_id, "breach", 0.8))
    await timers.cancel(js, fired.incident_id, "resolve", "breach")
    # A later control timer: had the cancelled one fired, it would sit before the control in
    # the stream, and the consumer delivers in stream order.
    await timers.arm(js, firing(fired.incident_id, "warning", 1.8))
    await fired.wait_for(1)
    assert fired.stages() == ["warning"]


async def test_a_schedule_due_while_nobody_consumed_is_delivered_on_start(
    js: JetStreamContext,
) -> None:
    incident_id = new_incident_id()
    past = firing(incident_id, "breach", -30.0)
    await timers.arm(js, past)

    async def fired_into_stream() -> bool:
        return not await timers.pending_subjects(js, incident_id)

    await eventually(fired_into_stream, within_s=5, what="the overdue schedule to fire")
    recorder = Firings(js, incident_id)
    await recorder.start()
    try:
        [(_, msg)] = await recorder.wait_for(1)
        assert timers.decode_firing(msg) == past
    finally:
        await recorder.stop()


async def test_a_firing_on_a_foreign_subject_is_refused() -> None:
    class FakeMsg:
        subject = "sla.fired.OTHER.resolve.breach"
        data = firing("INC1", "breach", 0).model_dump_json().encode()

    try:
        timers.decode_firing(FakeMsg())  # type: ignore[arg-type]
    except ValueError as exc:
        assert "belongs on" in str(exc)
    else:
        raise AssertionError("a firing on another incident's subject must not decode")
