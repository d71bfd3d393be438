"""Incident histories known to be whole, kept in memory so a decision need not read them.

A reaction loads its incident's history at least up to the event it reacts to
(``decide_and_append``'s ``at_least``). Most of the time the service has just seen every event
of that history: routing is handed a new incident's ``reported``, which is the whole history;
sla is handed ``assigned`` right after ``reported`` (its clock view reads the stream), and
then reads back nothing but what it wrote itself. ``KnownHistories`` is a ``DecisionStore``
around the event store that answers such loads from memory, and reads the server otherwise.

A history is held only while it is proven whole, by the same chain ``is_whole_history``
follows: every decision is stored expecting the incident's previous event
(``Nats-Expected-Last-Subject-Sequence`` on ``incident.<id>.*``, checked by the server), and
the later messages of an atomic batch follow the one before. So a message whose previous
event is "none" starts a whole history; one whose previous event is the last one held extends
it; anything else (no expectation, a gap: an event this service was not shown) forgets it. A
successful append extends the history it expected; a load that went to the server replaces
an older one. Whatever order the messages come in, what is held is every event of the
incident up to its last one held, with the causes ``EventStore.load`` would read.

Why this is safe for ``decide_and_append`` (its docstring says what it guarantees):

- only a load with ``at_least`` is answered from memory, and only by a history that reaches
  it, which is what that load promises: the incident's events up to at least ``at_least``,
  no holes. The history may be behind the leader (another replica wrote since), as a
  follower's answer may be: a decision that writes is checked by the server, which refuses a
  stale expectation; a conflict forgets the history and asks the leader's last sequence, so
  the next load must reach past anything held and goes to the server. A reaction that writes
  nothing needs only the events up to the one it reacts to.
- "already applied" holds as before: a cause found in a held history is stored.
- a load without ``at_least`` (a read API, a command) always goes to the server: a history
  held here could be older than a follower's answer by any amount of time.

Why a store around the store rather than a ``known=`` argument to ``decide_and_append``: the
decision primitive stays one loop over "load, decide, append", unchanged for every caller;
what is known is fed from where it is seen (the consumers' deliveries, the clock view's
stream, the service's own appends) without threading a history through each handler, and a
write that bypasses ``decide_and_append`` (sla's fence on the folded clocks) still keeps the
history current.

Bounded: the least recently used incident is forgotten beyond ``size``. A message held before
its first use is kept as bytes and parsed on the first hit (the clock view sees every event of
the stream; most are never asked for).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from civicgrid.events import subjects, wire
from civicgrid.events.base import IncidentEvent
from civicgrid.events.decide import DecisionStore
from civicgrid.events.models import load_event_json
from civicgrid.events.store import (
    NO_EVENTS_YET,
    History,
    StoredEvent,
    linked_previous,
    note_cause,
)

DEFAULT_SIZE = 2048


def history_reads_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "civicgrid_history_reads_total",
        "Incident histories a decision asked for with a known event to reach: answered from "
        "the whole histories in memory (hit) or read from the server (miss)",
        ["service", "outcome"],
        registry=registry,
    )


@dataclass(slots=True)
class _Link:
    """One event after the materialised part of a held history."""

    sequence: int
    headers: Mapping[str, str]
    event: IncidentEvent | None  # None: not parsed yet (``data`` holds it)
    data: bytes = b""


@dataclass(slots=True)
class _Whole:
    """An incident's events up to ``version``, every one of them: ``base`` then ``links``."""

    base: History
    links: list[_Link]
    version: int

    def history(self) -> History:
        if not self.links:
            return self.base
        events = list(self.base.events)
        causes = dict(self.base.causes)
        for link in self.links:
            event = link.event if link.event is not None else load_event_json(link.data)
            events.append(StoredEvent(link.sequence, event))
            note_cause(causes, link.headers, event)
        self.base = History(self.base.incident_id, tuple(events), causes)
        self.links = []
        return self.base


class KnownHistories:
    """A ``DecisionStore`` answering loads from whole histories held in memory (LRU)."""

    def __init__(
        self,
        store: DecisionStore,
        *,
        size: int = DEFAULT_SIZE,
        reads: Counter | None = None,
        service: str = "",
    ) -> None:
        if size < 1:
            raise ValueError(f"a history cache holds at least one incident, not {size}")
        self._store = store
        self.size = size
        self._known: OrderedDict[str, _Whole] = OrderedDict()
        self._hit = reads.labels(service, "hit") if reads is not None else None
        self._miss = reads.labels(service, "miss") if reads is not None else None

    def __len__(self) -> int:
        return len(self._known)

    def version_of(self, incident_id: str) -> int | None:
        """The last stream sequence of the incident's whole history held (None: none held)."""
        whole = self._known.get(incident_id)
        return whole.version if whole is not None else None

    async def load(self, incident_id: str, *, at_least: int = 0) -> History:
        whole = self._known.get(incident_id)
        if at_least and whole is not None and whole.version >= at_least:
            try:
                history = whole.history()
            except Exception:
                # Bytes that do not parse as an event: the server's answer decides (and says).
                self._known.pop(incident_id, None)
            else:
                self._known.move_to_end(incident_id)
                if self._hit is not None:
                    self._hit.inc()
                return history
        if at_least and self._miss is not None:
            self._miss.inc()
        history = await self._store.load(incident_id, at_least=at_least)
        self._remember(history)
        return history

    async def last_sequence(self, incident_id: str) -> int:
        return await self._store.last_sequence(incident_id)

    async def append_decision(
        self,
        events: Sequence[IncidentEvent],
        *,
        cause: str,
        fingerprint: str,
        expected_version: int,
    ) -> list[StoredEvent]:
        try:
            written = await self._store.append_decision(
                events, cause=cause, fingerprint=fingerprint, expected_version=expected_version
            )
        except BaseException:
            # Refused because the incident moved on, or an outcome not known: only a read
            # can say what the history is now.
            if events:
                self._known.pop(events[0].incident_id, None)
            raise
        if written:
            headers = {wire.CAUSE: cause, wire.FINGERPRINT: fingerprint}
            links = [_Link(stored.sequence, headers, stored.event) for stored in written]
            self._extend(written[0].event.incident_id, expected_version, links)
        return written

    def observe(
        self,
        subject: str,
        sequence: int,
        headers: Mapping[str, str],
        *,
        event: IncidentEvent | None = None,
        data: bytes = b"",
    ) -> None:
        """A message of the incidents' stream, as delivered (``event`` when it is parsed
        already, else its ``data``): it starts, extends or ends the incident's held history."""
        try:
            incident_id, _ = subjects.parse_incident_subject(subject)
            incident_subjects = subjects.incident_events(incident_id)
        except subjects.SubjectError:
            return
        whole = self._known.get(incident_id)
        if whole is not None and sequence <= whole.version:
            return  # held already (our own append, a redelivery, a replay)
        previous = linked_previous(headers, sequence, incident_subjects)
        if previous is None:
            self._known.pop(incident_id, None)
            return
        # Bytes only where there is no event yet (they are parsed on the first hit).
        link = _Link(sequence, headers, event, b"" if event is not None else data)
        self._extend(incident_id, previous, [link])

    def _extend(self, incident_id: str, previous: int, links: list[_Link]) -> None:
        """Add events that follow one another, the first right after ``previous``."""
        whole = self._known.get(incident_id)
        if whole is None:
            if previous != NO_EVENTS_YET:
                return  # the start of its history was not seen here
            empty = History(incident_id, ())
            self._hold(incident_id, _Whole(empty, links, links[-1].sequence))
            return
        if whole.version >= links[-1].sequence:
            return  # an append's events, delivered before its acknowledgement
        # Right after what is held, or after the first of these events (delivered so).
        if previous != whole.version and all(link.sequence != whole.version for link in links):
            # A gap (events not seen here), or a start where a history is held already.
            self._known.pop(incident_id, None)
            return
        whole.links += (link for link in links if link.sequence > whole.version)
        whole.version = links[-1].sequence
        self._known.move_to_end(incident_id)

    def _remember(self, history: History) -> None:
        """A history read from the server: whole up to its version, kept if newer."""
        if not history.events:
            return
        whole = self._known.get(history.incident_id)
        if whole is None or whole.version < history.version:
            self._hold(history.incident_id, _Whole(history, [], history.version))

    def _hold(self, incident_id: str, whole: _Whole) -> None:
        self._known[incident_id] = whole
        self._known.move_to_end(incident_id)
        while len(self._known) > self.size:
            self._known.popitem(last=False)
