"""The consumer of timer firings (``sla.fired.>`` on SLA_TIMERS).

A local stand-in for the shared consumer's ``decode`` hook (shared interface #2): the same
ack / retry with back-off / dead-letter behaviour as ``EventConsumer``, but each message is
decoded as a ``TimerFiring`` instead of an incident event. Firings of one incident are handled
one after another; a firing that cannot be decoded goes to the DLQ as "unreadable".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog
from nats.aio.msg import Msg
from pydantic import ValidationError

from civicgrid.events.base import IncidentEvent
from civicgrid.events.consumer import (
    ConsumerMetrics,
    ConsumerSpec,
    Delivery,
    EventConsumer,
    PermanentFailure,
)
from civicgrid.events.dead_letters import DeadLetterPublisher
from civicgrid.events.timers import TimerFiring, decode_firing

log = structlog.get_logger("civicgrid.sla.firings")

FiringHandler = Callable[[TimerFiring, Delivery], Awaitable[None]]


async def _no_incident_events(_event: IncidentEvent, _delivery: Delivery) -> None:
    raise PermanentFailure("the firing consumer handles timer firings only")


@dataclass
class FiringConsumer(EventConsumer):
    firing_handler: FiringHandler = field(default=None)  # type: ignore[assignment]

    @classmethod
    def create(
        cls,
        spec: ConsumerSpec,
        handler: FiringHandler,
        dead_letters: DeadLetterPublisher,
        metrics: ConsumerMetrics,
    ) -> FiringConsumer:
        return cls(spec, _no_incident_events, dead_letters, metrics, handler)

    async def on_batch(self, messages: Sequence[Msg]) -> None:
        by_incident: dict[str, list[tuple[Msg, TimerFiring]]] = {}
        for msg in messages:
            try:
                firing = decode_firing(msg)
            except (ValueError, ValidationError) as exc:
                await self._dead_letter(msg, "unreadable", exc)
                continue
            by_incident.setdefault(firing.incident_id, []).append((msg, firing))
        outcomes = await asyncio.gather(
            *(self._in_order(group) for group in by_incident.values()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                log.error(
                    "batch_outcome_not_recorded", error=f"{type(outcome).__name__}: {outcome}"
                )

    async def _in_order(self, group: list[tuple[Msg, TimerFiring]]) -> None:
        for index, (msg, firing) in enumerate(group):
            if not await self._handle_firing(msg, firing):
                for later, _ in group[index + 1 :]:
                    await later.nak(delay=self.spec.delay_after(later.metadata.num_delivered))
                return

    async def _handle_firing(self, msg: Msg, firing: TimerFiring) -> bool:
        deliveries = msg.metadata.num_delivered
        bound = structlog.contextvars.bound_contextvars(
            incident_id=firing.incident_id,
            correlation_id=firing.correlation_id,
            clock=firing.clock,
            stage=firing.stage,
            consumer=self.spec.durable,
        )
        with bound:
            delivery = Delivery(msg.subject, msg.metadata.sequence.stream, deliveries)
            timer = self.metrics.handling_seconds.labels(
                self.spec.service, self.spec.durable, f"fired_{firing.stage}"
            )
            try:
                with timer.time():
                    await self.firing_handler(firing, delivery)
            except PermanentFailure as exc:
                await self._dead_letter(msg, "rejected", exc)
            except Exception as exc:
                if deliveries >= self.spec.max_deliver:
                    await self._dead_letter(msg, "retries_exhausted", exc)
                    return True
                delay = self.spec.delay_after(deliveries)
                log.warning("firing_failed_will_retry", error=str(exc), retry_in_s=delay)
                self.metrics.handled.labels(self.spec.service, self.spec.durable, "retry").inc()
                await msg.nak(delay=delay)
                return False
            else:
                await msg.ack()
                self.metrics.handled.labels(self.spec.service, self.spec.durable, "ok").inc()
            return True
