"""Feeds an EventConsumer from its durable pull consumer.

Why not a FastStream subscriber: its pull subscriber either starts every message of a batch as
its own task (so an incident's events can overtake each other) or waits for a full batch; and
nats-py's ``fetch(n)`` holds a lone message until the fetch's timeout. This loop waits for one
message, then takes what the consumer says is pending, so a lone event is handled at once and a
busy stream is still read in batches. FastStream keeps the broker, request/reply and its
Prometheus middleware; the consumer records its own metrics.

The loop also owns its durable on the server: reconciled with the spec at start, sampled every
few seconds (its lag), and recreated when someone deleted it (``missing`` meanwhile, which
``/readyz`` reports).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from nats.js.errors import FetchTimeoutError, NotFoundError

from civicgrid.events.consumer import EventConsumer
from civicgrid.events.reconcile import reconcile_consumer

log = structlog.get_logger("civicgrid.consumer")

FETCH_RETRY_S = 1.0


class PullLoop:
    """Fetches for one EventConsumer until stopped; a stop never abandons a batch half-handled."""

    IDLE_FETCH_S = 5.0
    REST_FETCH_S = 0.05

    def __init__(
        self,
        consumer: EventConsumer,
        jetstream: JetStreamContext,
        *,
        check_interval_s: float = 5.0,
    ) -> None:
        self._consumer = consumer
        self._js = jetstream
        self._check_interval_s = check_interval_s
        self._stopping = asyncio.Event()
        self._idle = True
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._ack_floor: int | None = None
        self._last_check_error: str | None = None
        self.failures = 0
        # True from when the durable is found deleted until it has been recreated.
        self.missing = False
        # Messages not yet delivered plus delivered and not yet acked, at the last sample.
        self.pending: int | None = None

    @property
    def durable(self) -> str:
        return self._consumer.spec.durable

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Reconcile the durable consumer with the spec, then fetch in the background.

        Reconciling before returning means that once a service has started, its consumers
        exist as configured: nothing published after that can be missed.
        """
        spec = self._consumer.spec
        await self._reconcile()
        # Fetches address the durable by name, so this subscription outlives a recreation.
        subscription = await self._js.pull_subscribe_bind(spec.durable, spec.stream)
        self._task = asyncio.create_task(self._run(subscription), name=f"pull:{spec.durable}")
        self._watcher = asyncio.create_task(self._watch(), name=f"watch:{spec.durable}")

    async def stop(self, grace_s: float = 10.0) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._task is None:
            return
        if self._idle:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self._task, timeout=grace_s)

    async def check(self) -> None:
        """Sample the durable (lag, ack floor); recreate it if it has gone missing."""
        spec = self._consumer.spec
        try:
            info = await self._js.consumer_info(spec.stream, spec.durable)
        except NotFoundError:
            if not self.missing:
                log.error("consumer_missing", consumer=spec.durable, stream=spec.stream)
            self.missing = True
            await self._reconcile()
        else:
            self._sample(info)

    async def _reconcile(self) -> None:
        spec = self._consumer.spec
        # A durable deleted under us resumes after the last ack floor seen, not from scratch.
        resume_after = self._ack_floor if self.missing else None
        result = await reconcile_consumer(
            self._js, spec.stream, spec.consumer_config(), resume_after=resume_after
        )
        self._sample(result.info)
        self.missing = False

    def _sample(self, info: ConsumerInfo) -> None:
        self.pending = (info.num_pending or 0) + (info.num_ack_pending or 0)
        if info.ack_floor is not None and info.ack_floor.stream_seq is not None:
            self._ack_floor = info.ack_floor.stream_seq

    async def _watch(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(self._check_interval_s)
            await self._check_quietly()

    async def _check_quietly(self) -> None:
        try:
            await self.check()
        except Exception as exc:
            # No connection, or no right to create it: still missing; the next check retries.
            # Once per kind of failure, not once a second while it lasts.
            if repr(exc) != self._last_check_error:
                log.warning("consumer_check_failed", consumer=self.durable, error=repr(exc))
            self._last_check_error = repr(exc)
        else:
            self._last_check_error = None

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
                if not self.missing:
                    log.warning("fetch_failed", consumer=spec.durable, error=repr(exc))
                # The durable may be gone (a fetch then finds no responder): recreate it.
                await self._check_quietly()
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
