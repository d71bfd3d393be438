"""Running clocks across incidents, for the read API and the auditor.

An in-memory projection of the INCIDENTS stream (an ordered consumer from the start). It is a
view, not a source of truth: timers live in the broker and every decision reloads the incident's
own history. A restarted service rebuilds it; ``/readyz`` says "catching up" meanwhile.
(When the shared projector lands — shared interface #3 — this can adopt it.)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from civicgrid.events import ownership, streams, subjects
from civicgrid.events.base import IncidentEvent
from civicgrid.events.models import load_event_json
from civicgrid.sla.domain.clocks import Clock, Clocks, Status, apply

log = structlog.get_logger("civicgrid.sla.read_model")

VIEWED_TYPES = frozenset(
    {
        "assigned",
        "deadline_extended",
        "closed",
        "reopened",
        "escalated",
        "sla_class_ordered",
        *(t for t in ownership.SLA_EVENTS if t.startswith("sla_")),
    }
)


@dataclass
class RunningClocks:
    incidents: dict[str, Clocks] = field(default_factory=dict)
    caught_up: bool = False
    position: int = 0
    _subscription: object | None = None

    def clocks_of(self, incident_id: str) -> Clocks | None:
        return self.incidents.get(incident_id)

    def running(self) -> list[tuple[Clocks, Clock]]:
        return [
            (clocks, clock)
            for clocks in self.incidents.values()
            for clock in clocks.by_name.values()
            if clock.status is not Status.STOPPED
        ]

    def on_message(self, msg: Msg) -> None:
        # Most of the stream (reports, commands) never touches a clock: skip their parse.
        if msg.subject.rsplit(".", 1)[-1] in VIEWED_TYPES:
            event = _parse(msg)
            if event is not None:
                self._apply(event)
        self.position = msg.metadata.sequence.stream
        if msg.metadata.num_pending == 0:
            self.caught_up = True

    def _apply(self, event: IncidentEvent) -> None:
        current = self.incidents.get(event.incident_id) or Clocks(event.incident_id)
        updated = apply(current, event)
        if updated is current:
            return
        if updated.by_name and not any(c.active for c in updated.by_name.values()):
            # Nothing left to watch: memory stays proportional to incidents with live clocks.
            self.incidents.pop(event.incident_id, None)
        else:
            self.incidents[event.incident_id] = updated

    async def start(self, js: JetStreamContext) -> None:
        async def handle(msg: Msg) -> None:
            self.on_message(msg)

        info = await js.stream_info(streams.INCIDENTS)
        if not info.state.last_seq:
            self.caught_up = True
        self._subscription = await js.subscribe(
            subjects.ALL_INCIDENT_EVENTS,
            cb=handle,
            stream=streams.INCIDENTS,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )

    async def stop(self) -> None:
        subscription = self._subscription
        if subscription is not None:
            await asyncio.shield(subscription.unsubscribe())  # type: ignore[attr-defined]
            self._subscription = None

    def problem(self) -> str | None:
        return None if self.caught_up else f"clock view catching up (at {self.position})"


def _parse(msg: Msg) -> IncidentEvent | None:
    try:
        return load_event_json(msg.data)
    except Exception as exc:
        # The consumers dead-letter what they cannot read; the view just skips it.
        log.warning("read_model_skipped_event", error=type(exc).__name__, subject=msg.subject)
        return None
