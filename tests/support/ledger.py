"""What the INCIDENTS stream holds after a run, and the checks every chaos test makes on it:
every report stored once, every incident assigned once, no clock started, warned, breached or
escalated twice, nothing dead-lettered."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client as NatsClient
from nats.js.errors import NotFoundError

from civicgrid.events.base import IncidentEvent
from civicgrid.events.incident_events import (
    Assigned,
    Escalated,
    Merged,
    Reported,
    SlaBreached,
    SlaClockStarted,
    SlaWarning,
)
from civicgrid.events.models import load_event_json
from civicgrid.events.streams import DLQ, INCIDENTS
from civicgrid.servicekit.seeds import NatsSeeds


@dataclass
class Ledger:
    events: list[IncidentEvent] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)  # each event's stream sequence

    @property
    def last_sequence(self) -> int:
        return self.sequences[-1] if self.sequences else 0

    @property
    def by_incident(self) -> dict[str, list[IncidentEvent]]:
        grouped: dict[str, list[IncidentEvent]] = defaultdict(list)
        for event in self.events:
            grouped[event.incident_id].append(event)
        return grouped

    def reported_incidents(self) -> set[str]:
        return {e.incident_id for e in self.events if isinstance(e, Reported)}

    def unassigned(self) -> set[str]:
        assigned = {e.incident_id for e in self.events if isinstance(e, Assigned)}
        return self.reported_incidents() - assigned

    def unclocked(self) -> set[str]:
        """Assigned incidents whose first assignment's clocks sla has not started: accept and
        resolve, and arrive for an on-site matter."""
        missing = set()
        for incident_id, events in self.by_incident.items():
            first = next((e for e in events if isinstance(e, Assigned)), None)
            if first is None:
                continue
            owed = {"accept", "resolve"} | ({"arrive"} if first.on_site else set())
            started = {e.clock for e in events if isinstance(e, SlaClockStarted)}
            if not owed <= started:
                missing.add(incident_id)
        return missing

    def unfinished_clocks(self, ladder_levels: int) -> set[str]:
        """Incidents with a started clock not yet breached and escalated up every rung (with a
        seconds-scale policy and nobody accepting, every clock ends so)."""
        unfinished = set()
        for incident_id, events in self.by_incident.items():
            started = {(e.clock, e.clock_version) for e in events if isinstance(e, SlaClockStarted)}
            breached = {(e.clock, e.clock_version) for e in events if isinstance(e, SlaBreached)}
            rungs = {
                (e.clock, e.clock_version, e.ladder_level)
                for e in events
                if isinstance(e, Escalated)
            }
            for clock, version in started:
                top = all((clock, version, level) in rungs for level in range(1, ladder_levels + 1))
                if (clock, version) not in breached or not top:
                    unfinished.add(incident_id)
        return unfinished

    def problems(self, receipts: dict[str, str]) -> list[str]:
        """Everything that is not exactly as it should be, in words; empty when all is well."""
        found: list[str] = []
        reports = [e for e in self.events if isinstance(e, Reported | Merged)]
        if len(reports) != len(receipts):
            found.append(
                f"{len(receipts)} reports taken, {len(reports)} reported/merged events stored"
            )
        known = {e.incident_id for e in self.events}
        lost = sorted({i for i in receipts.values() if i not in known})
        if lost:
            found.append(f"receipts naming incidents the stream does not hold: {lost[:5]}")
        unassigned = sorted(self.unassigned())
        if unassigned:
            found.append(f"{len(unassigned)} incidents never assigned: {unassigned[:5]}")
        unclocked = sorted(self.unclocked())
        if unclocked:
            found.append(f"{len(unclocked)} incidents' clocks never started: {unclocked[:5]}")
        for incident_id, events in self.by_incident.items():
            found += _doubles(incident_id, events)
        if self.dead_letters:
            found.append(f"{len(self.dead_letters)} dead letters: {self.dead_letters[:3]}")
        return found


def _doubles(incident_id: str, events: list[IncidentEvent]) -> list[str]:
    found = []
    # The load never returns, reopens or escalates by hand: one assignment each, by routing.
    assignments = [e for e in events if isinstance(e, Assigned)]
    if len(assignments) > 1 and not any(isinstance(e, Escalated) for e in events):
        found.append(f"{incident_id} assigned {len(assignments)} times")
    numbers = Counter(e.assignment_no for e in assignments)
    found += [f"{incident_id} assignment_no {n} written {c}x" for n, c in numbers.items() if c > 1]
    # Each clock version starts and breaches once, warns once per warning and climbs each rung
    # of its ladder once per repeat.
    keyed: Counter[tuple[str, ...]] = Counter()
    for event in events:
        if isinstance(event, SlaClockStarted | SlaBreached):
            keyed[(event.event_type, event.clock, str(event.clock_version))] += 1
        elif isinstance(event, SlaWarning):
            key = (event.event_type, event.clock, str(event.clock_version), str(event.warning_no))
            keyed[key] += 1
        elif isinstance(event, Escalated):
            rung = (str(event.clock_version), str(event.ladder_level), str(event.repeat))
            keyed[(event.event_type, event.clock, *rung)] += 1
    found += [f"{incident_id} {' '.join(k)} written {c} times" for k, c in keyed.items() if c > 1]
    return found


async def read_ledger(admin_seeds: str) -> Ledger:
    client = await nats.connect(**NatsSeeds.parse(admin_seeds).connect_options(), name="ledger")
    try:
        ledger = Ledger()
        stored = await _read_all(client, INCIDENTS)
        ledger.events = [load_event_json(data) for _, data in stored]
        ledger.sequences = [sequence for sequence, _ in stored]
        letters = await _read_all(client, DLQ)
        ledger.dead_letters = [data.decode(errors="replace")[:300] for _, data in letters]
        return ledger
    finally:
        await client.close()


async def _read_all(client: NatsClient, stream: str) -> list[tuple[int, bytes]]:
    js = client.jetstream()
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    last = info.state.last_seq
    if info.state.messages == 0:
        return []
    found: list[tuple[int, bytes]] = []
    subscription = await js.subscribe(
        f"{'incident' if stream == INCIDENTS else 'dlq'}.>", ordered_consumer=True, stream=stream
    )
    try:
        while True:
            message = await subscription.next_msg(timeout=10)
            sequence = message.metadata.sequence.stream
            found.append((sequence, message.data))
            if sequence >= last:
                return found
    finally:
        await subscription.unsubscribe()
