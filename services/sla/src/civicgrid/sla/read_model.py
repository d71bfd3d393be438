"""Running clocks across incidents, for the read API and the auditor.

An in-memory projection of the INCIDENTS stream (an ordered consumer from the start). It is a
view, not a source of truth: timers live in the broker and every decision reloads the incident's
own history. A restarted service rebuilds it; ``/readyz`` says "catching up" meanwhile.
(When the shared projector lands — shared interface #3 — this can adopt it.)

It also offers timer firings a cheap fence (``fence``): an incident's clocks as folded from its
history up to the incident's last stream sequence seen here. A firing decided on them is
appended expecting exactly that sequence, so it is stored only if the incident's history is
still what was folded; otherwise the firing takes the full path (load the history, walk it).
The fold in stream order equals the walk's (``domain/decide.py``) only while every reaction of
the sla service sits right after the trigger it answers and none is missing: each incident's
``_Fence`` follows that, conservatively, and once in doubt it stays out of the fast path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from civicgrid.events import ownership, streams, subjects
from civicgrid.events.base import IncidentEvent
from civicgrid.events.known_histories import KnownHistories
from civicgrid.events.models import load_event_json
from civicgrid.events.store import StoredEvent
from civicgrid.sla.domain.clocks import SLA_SOURCE, Clock, Clocks, Status, apply
from civicgrid.sla.domain.decide import FIRING_CAUSE_PREFIX
from civicgrid.sla.domain.rules import TRIGGERS

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
# Read as well on an incident the view follows: the fence needs to know where reactions go.
FENCE_TYPES = TRIGGERS - VIEWED_TYPES


@dataclass(slots=True)
class _Fence:
    """Whether an incident's stream-order fold is its walk, up to ``version``.

    The walk places each sla reaction at the trigger it answers and adds missing reactions;
    the view applies events in stream order. They agree while each trigger is followed
    directly by its reaction. A trigger whose reaction has not come yet (``awaiting``) may
    still be owed one (or have none: the view cannot tell without deciding), so the fence is
    not offered meanwhile; anything else out of that shape ends ``exact`` for good.
    """

    version: int
    exact: bool = True
    awaiting: str | None = None
    reacting: str | None = None

    def see(self, event: IncidentEvent, sequence: int) -> None:
        self.version = sequence
        if not self.exact:
            return
        cause = event.causation_id
        if event.event_type in TRIGGERS:
            # A trigger after one still unanswered: the earlier one's reaction (if any) would
            # go before this one in the walk.
            self.exact = self.awaiting is None
            self.awaiting, self.reacting = event.event_id, None
        elif (
            event.source == SLA_SOURCE
            and cause is not None
            and not cause.startswith(FIRING_CAUSE_PREFIX)
        ):
            # A reaction: in place only right after its trigger (or its earlier part).
            if cause in (self.awaiting, self.reacting):
                self.awaiting, self.reacting = None, cause
            else:
                self.exact = False
        else:
            self.plain(sequence)

    def plain(self, sequence: int) -> None:
        """An event that is no reaction and no trigger (its place is where it is stored)."""
        self.version = sequence
        if self.awaiting is not None:
            # Between a trigger and its reaction (or after a trigger with no reaction).
            self.exact = False
        self.reacting = None

    @property
    def usable(self) -> bool:
        return self.exact and self.awaiting is None


@dataclass
class RunningClocks:
    incidents: dict[str, Clocks] = field(default_factory=dict)
    caught_up: bool = False
    position: int = 0
    _subscription: object | None = None
    _fences: dict[str, _Fence] = field(default_factory=dict)
    # Incidents with an event the view could not read: their fold is never a fence.
    _unreadable: set[str] = field(default_factory=set)
    # Shown every message, so that a decision on an incident whose whole history passed here
    # need not read it: sla's first decision is on ``assigned``, and its consumer is never
    # delivered the ``reported`` before it.
    histories: KnownHistories | None = None

    def clocks_of(self, incident_id: str) -> Clocks | None:
        return self.incidents.get(incident_id)

    def running(self) -> list[tuple[Clocks, Clock]]:
        return [
            (clocks, clock)
            for clocks in self.incidents.values()
            for clock in clocks.by_name.values()
            if clock.status is not Status.STOPPED
        ]

    def fence(self, incident_id: str) -> tuple[int, Clocks] | None:
        """The incident's clocks and the stream sequence of its last event they include,
        when that fold is the walk of its history; None when only a full load can tell."""
        fence = self._fences.get(incident_id)
        clocks = self.incidents.get(incident_id)
        if fence is None or clocks is None or not fence.usable:
            return None
        return fence.version, clocks

    def running_count(self) -> int:
        return sum(
            clock.status is not Status.STOPPED
            for clocks in self.incidents.values()
            for clock in clocks.by_name.values()
        )

    def appended(self, incident_id: str, after: int, stored: Sequence[StoredEvent]) -> None:
        """What a firing decided on the fence at ``after`` appended, right after it: applied
        now (the firing's event is not parsed again when the stream brings it, and a next
        firing of the incident finds the fence current)."""
        fence = self._fences.get(incident_id)
        if fence is None or fence.version != after:
            return  # the stream brought it already, or the fold moved on meanwhile
        for each in stored:
            self._apply(each.event, each.sequence)

    def on_message(self, msg: Msg) -> None:
        sequence = msg.metadata.sequence.stream
        _, incident_id, event_type = msg.subject.split(".", 2)
        fence = self._fences.get(incident_id)
        event: IncidentEvent | None = None
        if fence is not None and sequence <= fence.version:
            # Applied when it was appended (``appended``).
            pass
        # Most of the stream (reports, commands) never touches a clock: skip their parse.
        elif event_type in VIEWED_TYPES or (
            event_type in FENCE_TYPES and incident_id in self._fences
        ):
            event = _parse(msg)
            if event is not None:
                self._apply(event, sequence)
            else:
                self._unreadable.add(incident_id)
                self._fences.pop(incident_id, None)
        elif fence is not None:
            fence.plain(sequence)
        if self.histories is not None:
            # Parsed only if a decision asks for it (most reports never get one here).
            self.histories.observe(
                msg.subject, sequence, msg.headers or {}, event=event, data=msg.data
            )
        self._position(msg, sequence)

    def _position(self, msg: Msg, sequence: int) -> None:
        self.position = sequence
        if msg.metadata.num_pending == 0:
            self.caught_up = True

    def _apply(self, event: IncidentEvent, sequence: int) -> None:
        incident_id = event.incident_id
        known = self.incidents.get(incident_id)
        current = known or Clocks(incident_id)
        updated = apply(current, event)
        fence = self._fences.get(incident_id)
        if fence is not None:
            fence.see(event, sequence)
        if updated is current:
            return
        if updated.by_name and not any(c.active for c in updated.by_name.values()):
            # Nothing left to watch: memory stays proportional to incidents with live clocks.
            self.incidents.pop(incident_id, None)
            self._fences.pop(incident_id, None)
            return
        self.incidents[incident_id] = updated
        if known is None and incident_id not in self._unreadable:
            # Followed from here. An incident dropped earlier (every clock stopped) may come
            # back: the running clocks are then all newer than the drop, and the fence holds
            # for them (the firing path checks what else it relies on).
            fence = _Fence(sequence)
            fence.see(event, sequence)
            self._fences[incident_id] = fence

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
