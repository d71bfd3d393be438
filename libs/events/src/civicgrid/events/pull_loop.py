"""Feeds an EventConsumer from its durable pull consumer, through a standing pull request.

Why not a FastStream subscriber: its pull subscriber either starts every message of a batch as
its own task (so an incident's events can overtake each other) or waits for a full batch; and
nats-py's ``fetch(n)`` holds a lone message until the fetch's timeout. This loop keeps one pull
request open for up to ``batch_size`` messages (``StandingPull``, standing_pull.py): a lone
event is delivered and handled at once, a busy stream is read in batches of whatever arrived
while the last batch was handled, and the server sees about two requests per ``batch_size``
messages instead of one or two per batch. FastStream keeps the broker, request/reply and its
Prometheus middleware; the consumer records its own metrics.

What waits in this client counts toward the ack wait (explicit ack): the credit bounds how
much can wait (``batch_size`` buffered and owed), and ``in_progress`` beats keep what waits
behind a slow batch from being redelivered for waiting. A stop lets the batch in hand finish,
ends the requests, and NAKs what was delivered and not taken, so another replica gets it at
once rather than after the ack wait.

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
from nats.js.errors import NotFoundError

from civicgrid.events.consumer import EventConsumer
from civicgrid.events.reconcile import reconcile_consumer
from civicgrid.events.standing_pull import StandingPull

log = structlog.get_logger("civicgrid.consumer")

FETCH_RETRY_S = 1.0


class PullLoop:
    """Reads for one EventConsumer until stopped; a stop never abandons a batch half-handled."""

    IDLE_WAIT_S = 5.0

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
        self._pull: StandingPull | None = None
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
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
        # Requests address the durable by name, so this inbox outlives a recreation. (The
        # context's connection and API prefix are what its own pull subscriptions use.)
        pull = self._pull = StandingPull(
            self._js._nc,
            spec.stream,
            spec.durable,
            credit=spec.batch_size,
            api_prefix=self._js._prefix,
        )
        await pull.start()
        self._task = asyncio.create_task(self._run(pull), name=f"pull:{spec.durable}")
        self._watcher = asyncio.create_task(self._watch(), name=f"watch:{spec.durable}")
        self._keeper = asyncio.create_task(self._keep_buffered(pull), name=f"keep:{spec.durable}")

    @property
    def requests(self) -> int:
        """Pull requests sent so far."""
        return 0 if self._pull is None else self._pull.requests

    async def stop(self, grace_s: float = 10.0) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._task is not None:
            if self._pull is not None:
                self._pull.stop_waiting()
            # The batch in hand finishes (within the grace); what waits behind it is given
            # back, and kept from the ack wait until then.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=grace_s)
        if self._keeper is not None:
            self._keeper.cancel()

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

    async def _run(self, pull: StandingPull) -> None:
        try:
            await self._take_and_handle(pull)
        finally:
            # Only this client's interest ends; the durable consumer and its position stay.
            await self._give_back(await pull.close())

    async def _take_and_handle(self, pull: StandingPull) -> None:
        spec = self._consumer.spec
        while not self._stopping.is_set():
            try:
                batch = await pull.next_batch(spec.batch_size, self.IDLE_WAIT_S)
            except Exception as exc:
                # Consumer deleted, connection lost, server restarting, an API error: whatever
                # it is, the loop must not die quietly while /readyz says all is well.
                # Unacknowledged messages are redelivered; try again after a pause.
                self.failures += 1
                if not self.missing:
                    log.warning("fetch_failed", consumer=spec.durable, error=repr(exc))
                # The durable may be gone: recreate it.
                await self._check_quietly()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), FETCH_RETRY_S)
                continue
            if not batch:
                continue
            if self._stopping.is_set():
                # Taken as the stop came: not started, so given back with the rest.
                pull.buffered.extendleft(reversed(batch))
                return
            try:
                await self._consumer.on_batch(batch)
            except Exception as exc:
                # Acking or dead-lettering failed (connection gone): the server redelivers.
                self.failures += 1
                log.warning("batch_failed", consumer=spec.durable, error=repr(exc))

    async def _keep_buffered(self, pull: StandingPull) -> None:
        # What waits here behind a slow batch is the server's as delivered: its ack wait runs.
        # A beat per third of it (as the batch's own heartbeat does) keeps it from being
        # redelivered for waiting; a message taken into a batch then goes at most two thirds
        # of the ack wait before that batch's first beat.
        interval = self._consumer.spec.ack_wait_s / 3
        while True:
            await asyncio.sleep(interval)
            for msg in list(pull.buffered):
                try:
                    await msg.in_progress()
                except Exception as exc:
                    log.warning("heartbeat_failed", subject=msg.subject, error=repr(exc))

    async def _give_back(self, messages: list[Msg]) -> None:
        """NAK what was delivered here and not handled: another replica gets it at once,
        instead of after the ack wait (a delivery attempt spent, as a redelivery would).

        A delivery past ``max_deliver`` only carries its message to the DLQ; NAKed on the
        server's last one it would be dropped, so those go to the DLQ here and now (a publish
        each, quick beside a handler)."""
        spec = self._consumer.spec
        dead = [m for m in messages if m.metadata.num_delivered > spec.max_deliver]
        if dead:
            try:
                await self._consumer.on_batch(dead)
            except Exception as exc:
                log.warning("batch_failed", consumer=spec.durable, error=repr(exc))
        for msg in messages:
            if msg.metadata.num_delivered <= spec.max_deliver:
                with contextlib.suppress(Exception):
                    await msg.nak()
        if messages:
            log.info("gave_back_unhandled", consumer=self.durable, messages=len(messages))
