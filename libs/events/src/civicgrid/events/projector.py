"""Projectors: an ordered read of INCIDENTS into a model that stores its own position.

A ``Projection`` keeps its position (the last stream sequence it applied) in the same
transaction as what it projected; the projector reads from that position + 1 with an
ephemeral pull consumer (no acks, in stream order, made again from the stored position after
any error, kept flowing by a standing pull request: ``StandingPull``), hands events over in
batches, and never keeps a position of its own that could disagree with the model's. A crash
at any point re-reads from the stored position; what was applied is skipped by the
projection's per-row sequence, so a replayed event changes nothing.

Phases: catching up until the position reaches the stream's last sequence as seen at start
(``/readyz`` says "catching up: N behind"), then live. Unreadable events go to the DLQ with the
reason and the position moves past them, so one bad message never stops the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from civicgrid.events import streams, subjects
from civicgrid.events.base import IncidentEvent
from civicgrid.events.dead_letters import DeadLetterPublisher
from civicgrid.events.models import UnknownEventType, load_event_json
from civicgrid.events.standing_pull import StandingPull
from civicgrid.events.upcasting import UpcastError

log = structlog.get_logger("civicgrid.projector")


class PositionMoved(Exception):
    """The stored position is not where this projector left it: re-read from the stored one."""


class DeliveryGap(Exception):
    """A message the consumer sent never arrived: read again from what was stored."""


@dataclass(frozen=True)
class ProjectedEvent:
    sequence: int
    subject: str
    event: IncidentEvent


class Projection(Protocol):
    """What a projector feeds. ``apply`` stores ``position`` with the changes, atomically."""

    @property
    def name(self) -> str: ...

    async def load_position(self) -> int: ...

    async def apply(
        self, events: Sequence[ProjectedEvent], *, after: int, position: int
    ) -> None: ...


@dataclass(frozen=True)
class _Prepared:
    events: list[ProjectedEvent]
    last: int  # the batch's last stream sequence, readable or not
    pending: int  # messages left in the stream after it
    delivered: int  # the consumer sequence of the last message taken
    gap: bool  # a message after ``last`` never arrived: the batch ends before it


@dataclass
class ProjectorMetrics:
    position: Gauge
    lag: Gauge
    applied: Counter
    dead_lettered: Counter
    delivery_gaps: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ProjectorMetrics:
        return cls(
            position=Gauge(
                "civicgrid_projection_position",
                "Last stream sequence a projection applied",
                ["projection"],
                registry=registry,
            ),
            lag=Gauge(
                "civicgrid_projection_lag_events",
                "Stream messages not yet applied by a projection",
                ["projection"],
                registry=registry,
            ),
            applied=Counter(
                "civicgrid_projection_events_total",
                "Events a projection applied",
                ["projection"],
                registry=registry,
            ),
            dead_lettered=Counter(
                "civicgrid_projection_dead_letters_total",
                "Stream messages a projection could not read and sent to the DLQ",
                ["projection"],
                registry=registry,
            ),
            delivery_gaps=Counter(
                "civicgrid_projection_delivery_gaps_total",
                "Messages lost on their way to a projection (its connection dropped), read again",
                ["projection"],
                registry=registry,
            ),
        )


Decode = Callable[[bytes], IncidentEvent]

CONSUMER_INACTIVE_S = 30.0


@dataclass
class Projector:
    projection: Projection
    jetstream: Callable[[], JetStreamContext]
    dead_letters: DeadLetterPublisher
    metrics: ProjectorMetrics
    stream: str = streams.INCIDENTS
    filter_subject: str = subjects.ALL_INCIDENT_EVENTS
    batch_size: int = 1000
    idle_wait_s: float = 1.0
    retry_s: float = 1.0
    sample_every_s: float = 5.0
    decode: Decode = load_event_json
    position: int = field(default=0, init=False)
    target: int | None = field(default=None, init=False)  # stream's last sequence at start
    caught_up: bool = field(default=False, init=False)
    stream_last: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)
    consumer_name: str | None = field(default=None, init=False)  # the current ephemeral
    _applied: asyncio.Condition = field(default_factory=asyncio.Condition, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _sampled_at: float = field(default=0.0, init=False)
    _on_caught_up: list[Callable[[], Awaitable[None]]] = field(default_factory=list, init=False)

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def lag(self) -> int:
        return max(0, self.stream_last - self.position)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def when_caught_up(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._on_caught_up.append(hook)

    async def start(self) -> None:
        """Read the stored position and the stream's end, then project in the background."""
        self.position = await self.projection.load_position()
        info = await self.jetstream().stream_info(self.stream)
        self.target = self.stream_last = int(info.state.last_seq)
        self._publish_gauges()
        log.info(
            "projector_starting", projection=self.name, position=self.position, target=self.target
        )
        await self._check_caught_up()
        self._task = asyncio.create_task(self._run(), name=f"projector:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def problem(self) -> str | None:
        """For /readyz: None once caught up and running."""
        if self._task is None:
            return f"projection {self.name} not started"
        if not self.running:
            return f"projection {self.name} stopped"
        if not self.caught_up:
            return f"catching up: {self.lag} behind"
        return None

    async def wait_for(self, sequence: int, timeout_s: float) -> bool:
        """Wait until the model reflects ``sequence``; False at the deadline."""
        async with self._applied:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._applied.wait_for(lambda: self.position >= sequence), timeout_s
                )
            return self.position >= sequence

    async def _run(self) -> None:
        while True:
            try:
                await self._read_from_position()
            except asyncio.CancelledError:
                raise
            except PositionMoved as exc:
                log.warning("projection_position_moved", projection=self.name, detail=str(exc))
                self.position = await self.projection.load_position()
            except DeliveryGap as exc:
                log.warning("projection_delivery_gap", projection=self.name, detail=str(exc))
                self.metrics.delivery_gaps.labels(self.name).inc()
                self.position = await self.projection.load_position()
            except Exception as exc:
                # Connection lost, consumer gone, database busy: re-read from what is stored.
                self.failures += 1
                log.warning("projector_failed", projection=self.name, error=repr(exc))
                await asyncio.sleep(self.retry_s)
                with contextlib.suppress(Exception):
                    self.position = await self.projection.load_position()

    async def _read_from_position(self) -> None:
        # An ephemeral pull consumer without acks, from the stored position: it needs only the
        # read-a-stream rights every service has (no flow-control replies), reads in stream
        # order, and if anything goes wrong it is simply made again from the stored position.
        # A standing pull request (``StandingPull``) keeps it flowing: about two requests per
        # ``batch_size`` events, none per event. An ordered push consumer needs no requests at
        # all, but measured on a 100,000-event read (nats-server 2.15, nats-py 2.16) the two
        # cost the same: push 4.0 µs of server and 11.7 µs of client CPU per event, this
        # 5.0 and 10.8 (nats-py's ordered consumer parses every message's metadata to check
        # its sequence). Push would also need flow-control replies and reset itself from its
        # own position; this one is the pull loop's code and restarts from the stored one.
        js = self.jetstream()
        name = uuid.uuid4().hex
        config = ConsumerConfig(
            name=name,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.position + 1,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=CONSUMER_INACTIVE_S,
            mem_storage=True,
            num_replicas=1,
            filter_subject=self.filter_subject,
        )
        await js.add_consumer(self.stream, config=config)
        self.consumer_name = name
        pull = StandingPull(
            js._nc,
            self.stream,
            name,
            credit=self.batch_size,
            api_prefix=js._prefix,
            acks_nothing=True,
        )
        # Pipelined: the next batch is read and decoded while the projection stores the
        # previous one. Stores stay one after another, each from the position the last left.
        storing: asyncio.Task[None] | None = None
        read_to = self.position
        # The consumer acks nothing, so the server counts a message done once sent: one lost
        # on its way (its connection dropped: a cluster node died) would be skipped for ever.
        # A fresh consumer numbers its deliveries 1, 2, 3 ... without a hole; a hole means a
        # loss, and the read starts again after the last message stored (as nats.go's ordered
        # consumer does). A loss with no message after it shows as the connection dropping:
        # the standing pull raises then (``acks_nothing``), and the read starts again too.
        delivered = 0
        try:
            await pull.start()
            while True:
                batch = await pull.next_batch(self.batch_size, self.idle_wait_s)
                if not batch:
                    if storing is not None:
                        await storing
                        storing = None
                    await self._sample_stream_end()
                    continue
                prepared = await self._prepare(batch, read_to, delivered)
                delivered = prepared.delivered
                if prepared.last != read_to:
                    read_to = prepared.last
                    if storing is not None:
                        await storing
                    storing = asyncio.create_task(self._store(prepared))
                if prepared.gap:
                    if storing is not None:
                        await storing
                        storing = None
                    raise DeliveryGap(f"{self.name}: a message after {read_to} never came")
        finally:
            if storing is not None and not storing.done():
                # A store already handed to the database finishes or not on its own; the next
                # start reads the position the database has, whichever it is.
                storing.cancel()
            with contextlib.suppress(Exception):
                await pull.close()
            with contextlib.suppress(Exception):
                # Gone after CONSUMER_INACTIVE_S anyway; deleting frees it at once.
                await js.delete_consumer(self.stream, name)

    async def _prepare(self, batch: list[Msg], read_to: int, delivered: int) -> _Prepared:
        """Decode a batch, up to a hole in its deliveries if any; unreadable events go to the
        DLQ. Nothing new in it when its ``last`` is ``read_to``."""
        events: list[ProjectedEvent] = []
        last = read_to
        pending = 0
        for msg in batch:
            sequence, consumer_sequence, pending_after = _positions(msg)
            if consumer_sequence != delivered + 1:
                return _Prepared(events, last, pending, delivered, gap=True)
            delivered, pending = consumer_sequence, pending_after
            if sequence <= read_to:
                continue
            last = sequence
            try:
                event = self.decode(msg.data)
            except (ValueError, UnknownEventType, UpcastError, ValidationError) as exc:
                await self._dead_letter(msg, exc)
                continue
            events.append(ProjectedEvent(sequence, msg.subject, event))
        return _Prepared(events, last, pending, delivered, gap=False)

    async def _store(self, prepared: _Prepared) -> None:
        last, pending = prepared.last, prepared.pending
        await self.projection.apply(prepared.events, after=self.position, position=last)
        self.metrics.applied.labels(self.name).inc(len(prepared.events))
        self.stream_last = max(self.stream_last, last + pending)
        async with self._applied:
            self.position = last
            self._applied.notify_all()
        self._publish_gauges()
        if pending == 0 or (self.target is not None and last >= self.target):
            await self._check_caught_up(pending == 0)

    async def _dead_letter(self, msg: Msg, exc: BaseException) -> None:
        error = _describe(exc)
        await self.dead_letters.publish(
            msg, consumer=f"projector-{self.name}", reason="unreadable", error=error
        )
        self.metrics.dead_lettered.labels(self.name).inc()
        log.error("dead_lettered", projection=self.name, subject=msg.subject, error=error)

    async def _sample_stream_end(self) -> None:
        # Idle: the stream's end tells the lag (and whether catching up is done) even when
        # nothing new arrives; asked now and then, not at every idle poll.
        if self.caught_up and time.monotonic() - self._sampled_at < self.sample_every_s:
            return
        self._sampled_at = time.monotonic()
        info = await self.jetstream().stream_info(self.stream)
        self.stream_last = max(self.stream_last, int(info.state.last_seq))
        self._publish_gauges()
        await self._check_caught_up()

    async def _check_caught_up(self, nothing_pending: bool = False) -> None:
        if self.caught_up:
            return
        if nothing_pending or (self.target is not None and self.position >= self.target):
            self.caught_up = True
            log.info("projection_caught_up", projection=self.name, position=self.position)
            for hook in self._on_caught_up:
                await hook()

    def _publish_gauges(self) -> None:
        self.metrics.position.labels(self.name).set(self.position)
        self.metrics.lag.labels(self.name).set(self.lag)


def _positions(msg: Msg) -> tuple[int, int, int]:
    """The stream and consumer sequences and the messages pending after it, from the reply subject
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>``:
    what ``msg.metadata`` gives, without building its timestamp and dataclasses per message
    (a tenth of a catch-up). Other reply forms (with a domain) go through ``msg.metadata``."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        return int(tokens[5]), int(tokens[6]), int(tokens[8])
    metadata = msg.metadata
    return metadata.sequence.stream, metadata.sequence.consumer, metadata.num_pending


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        # Locations and messages only: pydantic's text echoes input values (a citizen's phone).
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return f"schema violation: {problems}"
    return f"{type(exc).__name__}: {exc}"
