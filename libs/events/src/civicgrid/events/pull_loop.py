"""Feeds an EventConsumer from its durable pull consumer.

Why not a FastStream subscriber: its pull subscriber either starts every message of a batch as
its own task (so an incident's events can overtake each other) or waits for a full batch; and
nats-py's ``fetch(n)`` holds a lone message until the fetch's timeout. This loop waits for one
message, then takes what the consumer says is pending, so a lone event is handled at once and a
busy stream is still read in batches. FastStream keeps the broker, request/reply and its
Prometheus middleware; the consumer records its own metrics.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import FetchTimeoutError

from civicgrid.events.consumer import EventConsumer

log = structlog.get_logger("civicgrid.consumer")

FETCH_RETRY_S = 1.0


class PullLoop:
    """Fetches for one EventConsumer until stopped; a stop never abandons a batch half-handled."""

    IDLE_FETCH_S = 5.0
    REST_FETCH_S = 0.05

    def __init__(self, consumer: EventConsumer, jetstream: JetStreamContext) -> None:
        self._consumer = consumer
        self._js = jetstream
        self._stopping = asyncio.Event()
        self._idle = True
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    @property
    def durable(self) -> str:
        return self._consumer.spec.durable

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Bind (creating if needed) the durable consumer, then fetch in the background.

        Binding before returning means that once a service has started, its consumers exist:
        nothing published after that can be missed, whatever the deliver policy.
        """
        spec = self._consumer.spec
        subscription = await self._js.pull_subscribe(
            "", durable=spec.durable, stream=spec.stream, config=spec.consumer_config()
        )
        self._task = asyncio.create_task(self._run(subscription), name=f"pull:{spec.durable}")

    async def stop(self, grace_s: float = 10.0) -> None:
        self._stopping.set()
        if self._task is None:
            return
        if self._idle:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self._task, timeout=grace_s)

    async def _run(self, subscription: JetStreamContext.PullSubscription) -> None:
        try:
            await self._fetch_and_handle(subscription)
        finally:
            with contextlib.suppress(Exception):
                # Only this client's interest ends; the durable consumer and its position stay.
                await subscription.unsubscribe()

    async def _fetch_and_handle(self, subscription: JetStreamContext.PullSubscription) -> None:
        spec = self._consumer.spec
        while not self._stopping.is_set():
            try:
                batch = await self._next_batch(subscription)
            except (TimeoutError, FetchTimeoutError):
                continue
            except Exception as exc:
                # Connection lost, server restarting, an API error: whatever it is, the loop
                # must not die quietly while /readyz says all is well. Unacknowledged messages
                # are redelivered; try again after a pause.
                self.failures += 1
                log.warning("fetch_failed", consumer=spec.durable, error=repr(exc))
                await asyncio.sleep(FETCH_RETRY_S)
                continue
            self._idle = False
            try:
                await self._consumer.on_batch(batch)
            except Exception as exc:
                # Acking or dead-lettering failed (connection gone): the server redelivers.
                self.failures += 1
                log.warning("batch_failed", consumer=spec.durable, error=repr(exc))
            finally:
                self._idle = True

    async def _next_batch(self, subscription: JetStreamContext.PullSubscription) -> list[Msg]:
        # One message with a long poll answers as soon as anything arrives ...
        batch = await subscription.fetch(1, timeout=self.IDLE_FETCH_S)
        pending = batch[0].metadata.num_pending
        if pending:
            # ... and what the server says is already waiting comes back without a long poll.
            wanted = min(pending, self._consumer.spec.batch_size - 1)
            with contextlib.suppress(TimeoutError, FetchTimeoutError):
                batch += await subscription.fetch(wanted, timeout=self.REST_FETCH_S)
        return batch
