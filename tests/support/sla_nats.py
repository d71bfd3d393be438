"""For sla's integration tests: writing an incident's events as intake and routing do, and
reading back what the sla service wrote."""

from __future__ import annotations

from datetime import UTC, datetime

from nats.js import JetStreamContext

from civicgrid.events import timers
from civicgrid.events.base import IncidentEvent
from civicgrid.events.store import EventStore
from tests.support.events.waiting import eventually
from tests.support.sla import Script


class SlaWorld:
    def __init__(self, store: EventStore, js: JetStreamContext) -> None:
        self.store = store
        self.js = js

    def incident(self) -> Script:
        """A script at the real current time: the service's timers run on the wall clock."""
        return Script(datetime.now(UTC))

    async def append(self, event: IncidentEvent) -> IncidentEvent:
        # Unconditional, like an independent writer: sla must cope with any interleaving.
        await self.store.append(event, msg_id=event.event_id, expected_version=None)
        return event

    async def now(self, script: Script) -> Script:
        script.now = datetime.now(UTC)
        return script

    async def history(self, incident_id: str) -> list[IncidentEvent]:
        return list(await self.store.load(incident_id))

    async def sla_events(self, incident_id: str) -> list[IncidentEvent]:
        return [e for e in await self.history(incident_id) if e.source == "sla"]

    async def wait_for(
        self, incident_id: str, label: str, count: int = 1, within_s: float = 15.0
    ) -> list[IncidentEvent]:
        """Wait until ``count`` sla events of ``label`` (``type`` or ``type:clock``) exist."""

        async def probe() -> list[IncidentEvent] | None:
            found = [e for e in await self.sla_events(incident_id) if _label(e, label)]
            return found if len(found) >= count else None

        return await eventually(probe, within_s=within_s, what=f"{count} x {label}")

    async def pending(self, incident_id: str) -> set[str]:
        return await timers.pending_subjects(self.js, incident_id)


def _label(event: IncidentEvent, label: str) -> bool:
    event_type, _, clock = label.partition(":")
    return event.event_type == event_type and (not clock or getattr(event, "clock", "") == clock)


def labels(events: list[IncidentEvent]) -> list[str]:
    return [f"{e.event_type}:{getattr(e, 'clock', '')}".rstrip(":") for e in events]
