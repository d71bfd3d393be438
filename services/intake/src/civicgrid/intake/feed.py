"""Replays the INCIDENTS stream into this replica's index, then follows it.

An ordered consumer: ephemeral, in memory on the server, flow-controlled, recreated by the
client on a gap, so every replica sees every event in stream order (a shared durable
consumer would split the events between replicas). Readiness waits until the replay has
reached the stream's last sequence as it was at start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from pydantic import ValidationError

from civicgrid.events import streams, subjects
from civicgrid.events.models import UnknownEventType, load_event_json
from civicgrid.events.upcasting import UpcastError
from civicgrid.intake.index import IncidentIndex
from civicgrid.intake.metrics import IntakeMetrics

log = structlog.get_logger("civicgrid.intake.feed")

IDLE_HEARTBEAT_S = 5.0


@dataclass
class ProjectionFeed:
    jetstream: Callable[[], JetStreamContext]
    index: IncidentIndex
    metrics: IntakeMetrics
    _target: int | None = None
    _subscription: Any = None

    async def start(self) -> None:
        js = self.jetstream()
        info = await js.stream_info(streams.INCIDENTS)
        self._target = int(info.state.last_seq or 0)
        self._subscription = await js.subscribe(
            subjects.ALL_INCIDENT_EVENTS,
            stream=streams.INCIDENTS,
            cb=self._on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
            idle_heartbeat=IDLE_HEARTBEAT_S,
        )
        log.info("projection_replay_started", until_sequence=self._target)

    async def stop(self) -> None:
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception as exc:  # the connection may already be closing
                log.warning("projection_unsubscribe_failed", error=str(exc))
            self._subscription = None

    async def problem(self) -> str | None:
        if self._target is None:
            return "projection not started"
        if self.index.position < self._target:
            return f"replaying incidents: {self.index.position} of {self._target}"
        return None

    async def _on_message(self, msg: Msg) -> None:
        sequence = int(msg.metadata.sequence.stream)
        try:
            event = load_event_json(msg.data)
        except (ValueError, UnknownEventType, UpcastError, ValidationError) as exc:
            # The index skips what it cannot read; each consumer that must act on it
            # dead-letters it. Only the type of error is logged: the body may be personal.
            log.error("projection_skipped_event", sequence=sequence, error=type(exc).__name__)
            self.metrics.projection_skipped.inc()
            self.index.position = max(self.index.position, sequence)
            return
        self.index.apply(sequence, event)
        self.metrics.projection_position.set(self.index.position)
