"""The consumer every service uses: durable pull, explicit ack, bounded redelivery, DLQ.

- Bad JSON, an unknown type or a schema violation cannot get better by retrying: it goes to the
  DLQ at once and the consumer moves on.
- A handler error is retried with back-off (NAK with delay) up to ``max_deliver``; the last
  failure goes to the DLQ with the error. Nothing is dropped silently, nothing blocks.
- FastStream runs one fetched batch concurrently; a per-incident lock keeps the events of one
  incident in stream order inside a replica. Across replicas, handlers stay correct by deriving
  state from the incident's own history and appending with optimistic concurrency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from civicgrid.events import streams
from civicgrid.events.base import IncidentEvent
from civicgrid.events.dead_letters import DeadLetterPublisher
from civicgrid.events.models import UnknownEventType, load_event_json
from civicgrid.events.upcasting import UpcastError
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.aio.msg import Msg
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

log = structlog.get_logger("civicgrid.consumer")


class PermanentFailure(Exception):
    """Raised by a handler for an event it can never handle: dead-letter it without retrying."""


@dataclass(frozen=True)
class Delivery:
    """What a handler may want to know about the message beside the event itself."""

    subject: str
    stream_sequence: int
    deliveries: int


EventHandler = Callable[[IncidentEvent, Delivery], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    service: str
    durable: str
    filter_subjects: tuple[str, ...]
    stream: str = streams.INCIDENTS
    max_deliver: int = 6
    backoff_s: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0, 30.0)
    ack_wait_s: float = 30.0
    batch_size: int = 64
    max_ack_pending: int = 1000

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=JsAckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            filter_subjects=list(self.filter_subjects),
        )

    def delay_after(self, deliveries: int) -> float:
        return self.backoff_s[min(deliveries, len(self.backoff_s)) - 1] if self.backoff_s else 0.0


@dataclass
class ConsumerMetrics:
    handled: Counter
    dead_lettered: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ConsumerMetrics:
        return cls(
            handled=Counter(
                "civicgrid_consumer_messages_total",
                "Messages a consumer finished with, by outcome",
                ["service", "consumer", "outcome"],
                registry=registry,
            ),
            dead_lettered=Counter(
                "civicgrid_dead_letters_total",
                "Messages sent to the DLQ, by reason",
                ["service", "consumer", "reason"],
                registry=registry,
            ),
        )


@dataclass
class EventConsumer:
    spec: ConsumerSpec
    handler: EventHandler
    dead_letters: DeadLetterPublisher
    metrics: ConsumerMetrics
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _lock_users: dict[str, int] = field(default_factory=dict)

    async def on_message(self, msg: Msg) -> None:
        deliveries = msg.metadata.num_delivered
        try:
            event = load_event_json(msg.data)
        except (ValueError, UnknownEventType, UpcastError, ValidationError) as exc:
            await self._dead_letter(msg, "unreadable", exc)
            return
        key = event.incident_id
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                await self._handle(msg, event, deliveries)
        finally:
            # Forget the lock once no message of this incident holds or awaits it.
            self._lock_users[key] -= 1
            if self._lock_users[key] == 0:
                del self._lock_users[key], self._locks[key]

    async def _handle(self, msg: Msg, event: IncidentEvent, deliveries: int) -> None:
        bound = structlog.contextvars.bound_contextvars(
            incident_id=event.incident_id,
            correlation_id=event.correlation_id,
            event_type=event.event_type,
            consumer=self.spec.durable,
        )
        with bound:
            delivery = Delivery(msg.subject, msg.metadata.sequence.stream, deliveries)
            try:
                await self.handler(event, delivery)
            except PermanentFailure as exc:
                await self._dead_letter(msg, "rejected", exc)
            except Exception as exc:
                if deliveries >= self.spec.max_deliver:
                    await self._dead_letter(msg, "retries_exhausted", exc)
                else:
                    delay = self.spec.delay_after(deliveries)
                    log.warning(
                        "handler_failed_will_retry",
                        error=_describe(exc),
                        deliveries=deliveries,
                        retry_in_s=delay,
                    )
                    self.metrics.handled.labels(self.spec.service, self.spec.durable, "retry").inc()
                    await msg.nak(delay=delay)
            else:
                await msg.ack()
                self.metrics.handled.labels(self.spec.service, self.spec.durable, "ok").inc()

    async def _dead_letter(self, msg: Msg, reason: str, exc: BaseException) -> None:
        error = _describe(exc)
        await self.dead_letters.publish(msg, consumer=self.spec.durable, reason=reason, error=error)
        # TERM, not ACK: the server records that this message was given up on, not handled.
        await msg.term()
        log.error("dead_lettered", reason=reason, error=error, subject=msg.subject)
        self.metrics.dead_lettered.labels(self.spec.service, self.spec.durable, reason).inc()
        self.metrics.handled.labels(self.spec.service, self.spec.durable, "dead_lettered").inc()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        # Field locations and messages only: pydantic's default text echoes the input values,
        # which may carry a citizen's name or phone.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return f"schema violation: {problems}"
    return f"{type(exc).__name__}: {exc}"


def attach_event_consumer(
    broker: NatsBroker,
    spec: ConsumerSpec,
    handler: EventHandler,
    dead_letters: DeadLetterPublisher,
    metrics: ConsumerMetrics,
) -> EventConsumer:
    consumer = EventConsumer(spec, handler, dead_letters, metrics)

    async def consume(message: NatsMessage) -> None:
        await consumer.on_message(message.raw_message)

    consume.__name__ = f"{spec.durable}_consume"
    broker.subscriber(
        "",
        stream=JStream(name=spec.stream, declare=False),
        durable=spec.durable,
        config=spec.consumer_config(),
        pull_sub=PullSub(batch_size=spec.batch_size, timeout=5.0),
        ack_policy=AckPolicy.MANUAL,
        title=spec.durable,
        description=f"{spec.service}: {', '.join(spec.filter_subjects)}",
    )(consume)
    return consumer
