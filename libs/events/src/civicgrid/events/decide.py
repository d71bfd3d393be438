"""Decide and append: the one write path of every service (design section 3).

Load the incident's history, run a pure decision on it, append the decision's events as one
atomic batch expecting the history's version; on a concurrent write, load and decide again.

Each decision answers a ``Cause``: a command (its idempotency key, and a fingerprint of what it
asked for) or a reaction (the handler and the event it reacts to). The cause travels with the
events it produced, so asking again is recognised from the incident's own history, beyond any
duplicate window: the same cause with the same fingerprint is "already applied", the same key
with another fingerprint is refused.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from civicgrid.events.base import IncidentEvent
from civicgrid.events.store import ConcurrencyConflict, History, StoredEvent

DEFAULT_ATTEMPTS = 8


@dataclass(frozen=True)
class Cause:
    # Unique per cause: "cmd:<system>:<command id>", "<service>:<handler>:<event id>", ...
    key: str
    # What the cause asked for; "" where the key alone says it (a reaction to one event).
    fingerprint: str = ""

    @classmethod
    def of_reaction(cls, service: str, handler: str, event_id: str) -> Cause:
        return cls(f"{service}:{handler}:{event_id}")


class IdempotencyConflict(Exception):
    """The key was used before for a different command or body: refused, nothing written."""

    def __init__(self, incident_id: str, cause: Cause) -> None:
        super().__init__(
            f"incident {incident_id}: key {cause.key!r} was already used for a different request"
        )
        self.incident_id = incident_id
        self.cause = cause


class DecisionContention(Exception):
    """The incident kept changing under us: give up for now (a consumer retries later)."""


@dataclass(frozen=True)
class Decided:
    history: History  # the history the decision was taken on
    written: tuple[StoredEvent, ...]  # what this call appended
    already_applied: bool  # the cause's events were in the history already

    @property
    def version(self) -> int:
        return self.written[-1].sequence if self.written else self.history.version


# Pure where it can be; a decision that must look something up first (a policy version named
# in the history) may be a coroutine.
Decide = Callable[[History], Sequence[IncidentEvent] | Awaitable[Sequence[IncidentEvent]]]


class DecisionStore(Protocol):
    """What deciding needs of the event store (``EventStore``; ``KnownHistories``, which
    answers a load with a floor from a whole history held in memory; or a test double)."""

    async def load(self, incident_id: str, *, at_least: int = 0) -> History: ...

    async def last_sequence(self, incident_id: str) -> int: ...

    async def append_decision(
        self,
        events: Sequence[IncidentEvent],
        *,
        cause: str,
        fingerprint: str,
        expected_version: int,
    ) -> list[StoredEvent]: ...


def fingerprint_of(name: str, body: Mapping[str, Any]) -> str:
    """A stable digest of a command's name and body (keys sorted, no insignificant space)."""
    canonical = json.dumps(
        {"name": name, "body": body}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def applied_before(history: History, cause: Cause) -> bool:
    """True if the cause's decision is in the history; raises if the key meant something else."""
    stored = history.causes.get(cause.key)
    if stored is None:
        return False
    if stored and cause.fingerprint and stored != cause.fingerprint:
        raise IdempotencyConflict(history.incident_id, cause)
    return True


async def decide_and_append(
    store: DecisionStore,
    incident_id: str,
    cause: Cause,
    decide: Decide,
    *,
    at_least: int = 0,
    max_attempts: int = DEFAULT_ATTEMPTS,
    on_conflict: Callable[[], None] | None = None,
) -> Decided:
    """Carry out ``decide`` for ``cause`` on the incident, once.

    ``at_least``: a stream sequence known to exist (the event being reacted to), so the read
    that decides never comes from a replica that has not applied it yet. ``on_conflict`` is
    told of every lost race (for a metric).

    No decision is taken on a stale history, though a replica of a replicated stream may answer
    the read from behind the leader:

    - a decision that writes is checked by the leader itself (the append expects the
      history's version), and a conflict reloads at least up to the leader's last sequence
      (as the refusal states it, or asked for);
    - "already applied" needs no check: a cause seen in a history is stored;
    - a decision that writes nothing (a refusal raised by ``decide``, or no events) is only
      answered once the leader's last sequence of the incident (``store.last_sequence``, one
      round trip) equals the history's version; if the incident has moved on, it is loaded at
      least up to there and decided again. A reaction with ``at_least`` skips that question:
      its history reaches the event it reacts to, and later events have reactions of their own.
    """
    floor = at_least
    for _ in range(max_attempts):
        history = await store.load(incident_id, at_least=floor)
        if applied_before(history, cause):
            return Decided(history, (), already_applied=True)
        try:
            decision = decide(history)
            events = await decision if inspect.isawaitable(decision) else decision
        except Exception:
            if newer := await _moved_on(store, history, at_least):
                floor = newer
                continue
            raise
        if not events:
            if newer := await _moved_on(store, history, at_least):
                floor = newer
                continue
            return Decided(history, (), already_applied=False)
        try:
            written = await store.append_decision(
                events,
                cause=cause.key,
                fingerprint=cause.fingerprint,
                expected_version=history.version,
            )
        except ConcurrencyConflict as conflict:
            if on_conflict is not None:
                on_conflict()
            # The refusal names the leader's last sequence when it can: no question to ask.
            current = conflict.current
            if current is None:
                current = await store.last_sequence(incident_id)
            floor = max(floor, current)
            continue
        return Decided(history, tuple(written), already_applied=False)
    raise DecisionContention(f"incident {incident_id} changed {max_attempts} times")


async def _moved_on(store: DecisionStore, history: History, at_least: int) -> int:
    """The leader's last sequence of the incident if it is past ``history``; else 0."""
    if at_least:
        return 0
    latest = await store.last_sequence(history.incident_id)
    return latest if latest > history.version else 0
