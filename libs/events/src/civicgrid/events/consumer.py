"""The consumer every service uses: durable pull, explicit ack, bounded redelivery, DLQ.

- Bad JSON, an unknown type or a schema violation cannot get better by retrying: it goes to the
  DLQ at once and the consumer moves on.
- A handler error is retried with back-off (NAK with delay) up to ``max_deliver``; the last
  failure goes to the DLQ with the error. Nothing is dropped silently, nothing blocks.
- Each fetched batch is handled whole: incidents concurrently, the events of one incident one
  after another in stream order; an event that fails holds back the later events of its
  incident. Across replicas, handlers stay correct by deriving state from the incident's own
  history and appending with optimistic concurrency.

``PullLoop`` (pull_loop.py) feeds it, and says why it is not a FastStream subscriber.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import ValidationError

from civicgrid.events import streams
from civicgrid.events.base import IncidentEvent
from civicgrid.events.dead_letters import DeadLetterPublisher
from civicgrid.events.models import UnknownEventType, load_event_json
from civicgrid.events.upcasting import UpcastError

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
    # Where a new durable starts: ALL for a service (nothing in the stream is skipped); NEW
    # where only what follows matters (a benchmark, a test sharing the stream with others).
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=self.deliver_policy,
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
    handling_seconds: Histogram

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
            handling_seconds=Histogram(
                "civicgrid_consumer_handling_seconds",
                "Time a handler took for one event, by event type",
                ["service", "consumer", "event_type"],
                registry=registry,
            ),
        )


@dataclass
class EventConsumer:
    spec: ConsumerSpec
    handler: EventHandler
    dead_letters: DeadLetterPublisher
    metrics: ConsumerMetrics

    async def on_batch(self, messages: Sequence[Msg]) -> None:
        """Handle one fetched batch: incidents concurrently, each incident's events in order."""
        by_incident: dict[str, list[tuple[Msg, IncidentEvent]]] = {}
        for msg in messages:
            try:
                event = load_event_json(msg.data)
            except (ValueError, UnknownEventType, UpcastError, ValidationError) as exc:
                await self._dead_letter(msg, "unreadable", exc)
                continue
            by_incident.setdefault(event.incident_id, []).append((msg, event))
        outcomes = await asyncio.gather(
            *(self._handle_in_order(group) for group in by_incident.values()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                # Acking or dead-lettering itself failed (the connection went away): the
                # messages stay unacknowledged and the server delivers them again.
                log.error("batch_outcome_not_recorded", error=_describe(outcome))

    async def _handle_in_order(self, group: list[tuple[Msg, IncidentEvent]]) -> None:
        for index, (msg, event) in enumerate(group):
            handled = await self._handle(msg, event, msg.metadata.num_delivered)
            if not handled:
                # The rest must not overtake the event that failed: they wait for its retry.
                for later, _ in group[index + 1 :]:
                    await later.nak(delay=self.spec.delay_after(later.metadata.num_delivered))
                return

    async def _handle(self, msg: Msg, event: IncidentEvent, deliveries: int) -> bool:
        """Handle one event; False when it was left for a retry."""
        bound = structlog.contextvars.bound_contextvars(
            incident_id=event.incident_id,
            correlation_id=event.correlation_id,
            event_type=event.event_type,
            consumer=self.spec.durable,
        )
        with bound:
            delivery = Delivery(msg.subject, msg.metadata.sequence.stream, deliveries)
            timer = self.metrics.handling_seconds.labels(
                self.spec.service, self.spec.durable, event.event_type
            )
            try:
                with timer.time():
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
                    return False
            else:
                await msg.ack()
                self.metrics.handled.labels(self.spec.service, self.spec.durable, "ok").inc()
            return True

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
