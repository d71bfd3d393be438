"""The consumer every service uses: durable pull, explicit ack, bounded redelivery, DLQ.

- Each spec has a decoder: a message to a typed value and a key (by default an incident event,
  keyed by incident id). A message the decoder refuses (bad JSON, an unknown type, a schema
  violation) cannot get better by retrying: it goes to the DLQ at once and the consumer moves on.
- A handler error is retried with back-off (NAK with delay) up to ``max_deliver``; the last
  failure goes to the DLQ with the error. While a batch is worked on, its messages get
  ``in_progress`` heartbeats, so a slow handler is not redelivered meanwhile (one past
  ``handler_timeout_s`` is cancelled and retried); a replica that crashed is noticed by the
  server's ack wait, which grows with each delivery.
- Nothing is lost on the way to the DLQ: the server allows a few deliveries beyond
  ``max_deliver``, which only carry a message to the DLQ (after a crash on its last attempt, or a
  failed dead-letter publish: that message is NAKed, never TERMed).
- Order: within a fetched batch, keys run concurrently and one key's messages one after another
  in stream order; a message that fails holds back the later ones of its key in that batch (on
  their last delivery they are dead-lettered, "held_back_retries_exhausted", not dropped). That
  is all: a retried message can be overtaken by a later one in another batch or on another
  replica. Handlers must not rely on delivery order: they fold the incident's own history,
  read in stream order from the store, and append with optimistic concurrency.

``PullLoop`` (pull_loop.py) feeds it, and says why it is not a FastStream subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import ValidationError

from civicgrid.events import streams
from civicgrid.events.base import IncidentEvent
from civicgrid.events.dead_letters import DeadLetterPublisher
from civicgrid.events.heartbeat import Heartbeat
from civicgrid.events.models import load_event_json

log = structlog.get_logger("civicgrid.consumer")

# Deliveries the server allows beyond a spec's max_deliver. They never reach the handler: they
# carry a message to the DLQ whose attempts ended without an outcome (a replica crashed or hung
# on it, or the dead-letter publish failed), instead of the server dropping it silently.
DEAD_LETTER_DELIVERIES = 5
MAX_UNSENT = 10_000
MIN_NAK_DELAY_S = 0.001


class PermanentFailure(Exception):
    """Raised by a handler for an event it can never handle: dead-letter it without retrying."""


class HandlerTimedOut(Exception):
    """A handler ran past its spec's ``handler_timeout_s``; it was cancelled and is retried."""


@dataclass(frozen=True)
class Delivery:
    """What a handler may want to know about the message beside its decoded value."""

    subject: str
    stream_sequence: int
    deliveries: int
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Original:
    """The message a delivered one stands for (a replay of a dead letter)."""

    subject: str
    stream_sequence: int
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Decoded:
    key: str  # messages with the same key are handled one after another
    value: object  # what the handler receives
    original: Original | None = None  # set by a replay's decoder: the handler's Delivery shows it


# Raises ValueError (pydantic's ValidationError is one) for a message it cannot read; anything
# it raises dead-letters the message as unreadable. It sees the subject, data and headers (a
# replay hands it a copy of the original without JetStream metadata).
Decoder = Callable[[Msg], Decoded]
Handler = Callable[[Any, Delivery], Awaitable[None]]
EventHandler = Handler


def decode_incident_event(msg: Msg) -> Decoded:
    """The default decoder: an incident event (upcast to the current schema), by incident id."""
    event = load_event_json(msg.data)
    return Decoded(key=event.incident_id, value=event)


@dataclass(frozen=True)
class ConsumerSpec:
    service: str
    durable: str
    filter_subjects: tuple[str, ...]
    stream: str = streams.INCIDENTS
    # Handler attempts; the last failure goes to the DLQ.
    max_deliver: int = 6
    # The pause before a failed handler's next attempt (a NAK with this delay).
    backoff_s: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0, 30.0)
    # How long the server waits for an ack before redelivering (a replica crashed or hung).
    # Heartbeats keep a running handler's messages from timing out. Each later delivery waits
    # longer: the server-side ``backoff`` adds the pause a failed attempt gets (``backoff_s``),
    # so a crashed handler's message is retried like a failed one, once the wait shows it.
    ack_wait_s: float = 30.0
    # A handler running longer is cancelled and retried (a hung one would otherwise keep its
    # message, heartbeat after heartbeat, and stall this replica's loop).
    handler_timeout_s: float = 300.0
    batch_size: int = 64
    max_ack_pending: int = 1000
    # Where a new durable starts: ALL for a service (nothing in the stream is skipped); NEW
    # where only what follows matters (a benchmark, a test sharing the stream with others).
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL
    decode: Decoder = decode_incident_event

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=self.deliver_policy,
            ack_policy=JsAckPolicy.EXPLICIT,
            # With a back-off the server takes its first step as the ack wait.
            ack_wait=self.ack_wait_s,
            backoff=self.ack_backoff(),
            max_deliver=self.server_max_deliver(),
            max_ack_pending=self.max_ack_pending,
            filter_subjects=list(self.filter_subjects),
        )

    def ack_backoff(self) -> list[float]:
        """The server's ack wait per delivery (its ``backoff``; it takes the first as ack wait)."""
        steps = [self.ack_wait_s, *(self.ack_wait_s + pause for pause in self.backoff_s)]
        # The server requires fewer steps than deliveries.
        return steps[: self.server_max_deliver() - 1]

    def server_max_deliver(self) -> int:
        return self.max_deliver + DEAD_LETTER_DELIVERIES

    def nak_delay(self, deliveries: int) -> float:
        """The delay to NAK with so that the next attempt comes ``delay_after`` later.

        nats-server (seen on 2.15) offsets a NAK's delay from the first back-off step but
        measures it against this delivery's step, adding their difference to the delay; where
        that difference is longer than the pause wanted, the pause is that difference.
        """
        steps = self.ack_backoff()
        step = steps[min(deliveries, len(steps)) - 1]
        # Never zero: a NAK without a delay is redelivered at once, whatever the back-off.
        return max(MIN_NAK_DELAY_S, self.delay_after(deliveries) - (step - steps[0]))

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
    handler: Handler
    dead_letters: DeadLetterPublisher
    metrics: ConsumerMetrics
    # Why a message whose dead-letter publish failed was given up on, until its next delivery.
    _unsent: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict, init=False)

    async def on_batch(self, messages: Sequence[Msg]) -> None:
        """Handle one fetched batch: keys concurrently, each key's messages in order."""
        async with Heartbeat(messages, self.spec.ack_wait_s / 3):
            await self._handle_batch(messages)

    async def _handle_batch(self, messages: Sequence[Msg]) -> None:
        by_key: dict[str, list[tuple[Msg, Decoded]]] = {}
        for msg in messages:
            try:
                decoded = self.spec.decode(msg)
            except Exception as exc:
                # Mostly ValueErrors (UnknownEventType, UpcastError, pydantic's ValidationError);
                # whatever else a decoder raises, the same bytes will raise it again.
                await self._dead_letter(msg, "unreadable", _describe(exc))
                continue
            by_key.setdefault(decoded.key, []).append((msg, decoded))
        groups = list(by_key.values())
        if len(groups) == 1:
            # One key (a lone event, most often): no task and gather for it.
            outcomes: list[BaseException | None] = [await self._settle(groups[0])]
        else:
            outcomes = await asyncio.gather(*(self._settle(group) for group in groups))
        for outcome in outcomes:
            if outcome is not None:
                # Acking or dead-lettering itself failed (the connection went away): the
                # messages stay unacknowledged and the server delivers them again.
                log.error("batch_outcome_not_recorded", error=_describe(outcome))

    async def _settle(self, group: list[tuple[Msg, Decoded]]) -> BaseException | None:
        try:
            await self._handle_in_order(group)
        except Exception as exc:
            return exc
        return None

    async def _handle_in_order(self, group: list[tuple[Msg, Decoded]]) -> None:
        for index, (msg, decoded) in enumerate(group):
            handled = await self._handle(msg, decoded, msg.metadata.num_delivered)
            if not handled:
                # Within a batch, the rest wait for the failed one's retry rather than overtake
                # it. (Only a courtesy: a later batch or another replica may still overtake it.)
                for later, _ in group[index + 1 :]:
                    await self._hold_back(later, behind=msg)
                return

    async def _hold_back(self, msg: Msg, *, behind: Msg) -> None:
        deliveries = msg.metadata.num_delivered
        if deliveries < self.spec.max_deliver:
            await msg.nak(delay=self.spec.nak_delay(deliveries))
            return
        # A NAK now would be its last: it would never be handled, nor dead-lettered.
        reason = f"held back behind stream sequence {behind.metadata.sequence.stream}"
        await self._dead_letter(msg, "held_back_retries_exhausted", reason)

    async def _handle(self, msg: Msg, decoded: Decoded, deliveries: int) -> bool:
        """Handle one message; False when it was left for a retry."""
        value = decoded.value
        with structlog.contextvars.bound_contextvars(
            **_log_context(value), consumer=self.spec.durable
        ):
            if deliveries > self.spec.max_deliver:
                # Attempts used up without an outcome (a crash, a hang, a failed dead-letter
                # publish): this delivery is only for the DLQ.
                reason, error = self._unsent.pop(
                    _position(msg),
                    ("retries_exhausted", f"delivered {deliveries} times without an outcome"),
                )
                return await self._dead_letter(msg, reason, error)
            delivery = _delivery(msg, decoded.original, deliveries)
            timer = self.metrics.handling_seconds.labels(
                self.spec.service, self.spec.durable, _kind(value)
            )
            try:
                with timer.time():
                    await self._run_handler(value, delivery)
            except PermanentFailure as exc:
                return await self._dead_letter(msg, "rejected", _describe(exc))
            except Exception as exc:
                if deliveries >= self.spec.max_deliver:
                    return await self._dead_letter(msg, "retries_exhausted", _describe(exc))
                delay = self.spec.delay_after(deliveries)
                log.warning(
                    "handler_failed_will_retry",
                    error=_describe(exc),
                    deliveries=deliveries,
                    retry_in_s=delay,
                )
                self.metrics.handled.labels(self.spec.service, self.spec.durable, "retry").inc()
                await msg.nak(delay=self.spec.nak_delay(deliveries))
                return False
            await msg.ack()
            self.metrics.handled.labels(self.spec.service, self.spec.durable, "ok").inc()
            return True

    async def _run_handler(self, value: object, delivery: Delivery) -> None:
        # Heartbeats keep a running handler's message from the others: one that hangs would
        # hold it (and this loop) for ever. Past its time it is a failure, retried like one.
        limit = self.spec.handler_timeout_s
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                await self.handler(value, delivery)
        except TimeoutError:
            if deadline.expired():
                raise HandlerTimedOut(f"the handler took longer than {limit:g} s") from None
            raise

    async def _dead_letter(self, msg: Msg, reason: str, error: str) -> bool:
        """Publish to the DLQ, then TERM; False when the publish failed and it waits for a retry."""
        try:
            await self.dead_letters.publish(
                msg, consumer=self.spec.durable, reason=reason, error=error
            )
        except Exception as exc:
            return await self._dead_letter_later(msg, reason, error, exc)
        # TERM, not ACK: the server records that this message was given up on, not handled.
        await msg.term()
        log.error("dead_lettered", reason=reason, error=error, subject=msg.subject)
        self.metrics.dead_lettered.labels(self.spec.service, self.spec.durable, reason).inc()
        self.metrics.handled.labels(self.spec.service, self.spec.durable, "dead_lettered").inc()
        return True

    async def _dead_letter_later(self, msg: Msg, reason: str, error: str, exc: Exception) -> bool:
        # Never TERM what is not in the DLQ: NAK it, and the delivery after the last attempt
        # (the server allows a few) publishes it again, with the error kept here meanwhile.
        deliveries = msg.metadata.num_delivered
        if len(self._unsent) < MAX_UNSENT:
            self._unsent[_position(msg)] = (reason, error)
        if deliveries >= self.spec.server_max_deliver():
            log.critical(
                "dead_letter_lost",
                reason=reason,
                subject=msg.subject,
                sequence=msg.metadata.sequence.stream,
                error=repr(exc),
            )
        else:
            log.error("dead_letter_failed", reason=reason, subject=msg.subject, error=repr(exc))
        with contextlib.suppress(Exception):
            # Without a connection the NAK is lost too; the ack wait then redelivers it.
            await msg.nak(delay=self.spec.nak_delay(deliveries))
        self.metrics.handled.labels(self.spec.service, self.spec.durable, "dlq_retry").inc()
        return False


def _delivery(msg: Msg, original: Original | None, deliveries: int) -> Delivery:
    if original is not None:
        return Delivery(original.subject, original.stream_sequence, deliveries, original.headers)
    return Delivery(msg.subject, msg.metadata.sequence.stream, deliveries, dict(msg.headers or {}))


def _position(msg: Msg) -> tuple[str, int]:
    return msg.metadata.stream, msg.metadata.sequence.stream


def _log_context(value: object) -> dict[str, str]:
    if isinstance(value, IncidentEvent):
        return {
            "incident_id": value.incident_id,
            "correlation_id": value.correlation_id,
            "event_type": value.event_type,
        }
    return {}


def _kind(value: object) -> str:
    """A metrics label: the event type, or the decoded value's class for other messages."""
    return value.event_type if isinstance(value, IncidentEvent) else type(value).__name__


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        # Field locations and messages only: pydantic's default text echoes the input values,
        # which may carry a citizen's name or phone.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return f"schema violation: {problems}"
    return f"{type(exc).__name__}: {exc}"
