"""The decision store's contract without a server, for fast tests of handlers.

Expected versions are checked per incident, a decision is stored whole, and each event keeps
the message id ``decide_and_append`` gives it (``<cause>:<incident>:<n>``), from which
``load`` reports the causes stored, as the real store does from its headers.
"""

from __future__ import annotations

from collections.abc import Sequence

from civicgrid.events.base import IncidentEvent
from civicgrid.events.store import ConcurrencyConflict, History, StoredEvent


class InMemoryStore:
    def __init__(self) -> None:
        self.stored: list[tuple[str, StoredEvent]] = []  # (message id, event)
        self.before_append: list[IncidentEvent] = []
        """Events another writer slips in just before our next append (to force conflicts)."""

    def add(self, event: IncidentEvent, msg_id: str | None = None) -> int:
        sequence = len(self.stored) + 1
        self.stored.append((msg_id or event.event_id, StoredEvent(sequence, event)))
        return sequence

    async def load(self, incident_id: str, *, at_least: int = 0) -> History:
        mine = [(m, s) for m, s in self.stored if s.event.incident_id == incident_id]
        causes = {m.rsplit(":", 2)[0]: "" for m, _ in mine if m.count(":") >= 2}
        return History(incident_id, tuple(s for _, s in mine), causes)

    async def last_sequence(self, incident_id: str) -> int:
        mine = [s.sequence for _, s in self.stored if s.event.incident_id == incident_id]
        return mine[-1] if mine else 0

    async def append_decision(
        self,
        events: Sequence[IncidentEvent],
        *,
        cause: str,
        fingerprint: str,
        expected_version: int,
    ) -> list[StoredEvent]:
        while self.before_append:
            self.add(self.before_append.pop(0))
        incident_id = events[0].incident_id
        mine = [s for _, s in self.stored if s.event.incident_id == incident_id]
        last = mine[-1].sequence if mine else 0
        if expected_version != last:
            raise ConcurrencyConflict(incident_id, expected_version, "wrong last sequence")
        return [
            StoredEvent(self.add(event, f"{cause}:{incident_id}:{n}"), event)
            for n, event in enumerate(events)
        ]
