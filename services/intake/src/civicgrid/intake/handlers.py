"""The use cases: take a report, carry out a command, show an incident.

Every write follows one pattern: load the incident's history, decide on the state folded
from it, append with the history's version as the expectation and a message id derived
from what caused it. When another writer got there first (``ConcurrencyConflict``), load
and decide again: the command is then judged by the new state, so of two conflicting
commands the second is refused for the reason the state gives ("already accepted"), while
two commands that do not conflict (an arrival and an extension) both go through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Literal

import structlog

from civicgrid.events.base import Actor, ActorKind, IncidentEvent, utc_now
from civicgrid.events.decide import (
    Cause,
    Decided,
    DecisionContention,
    IdempotencyConflict,
    decide_and_append,
    fingerprint_of,
)
from civicgrid.events.ids import new_event_id
from civicgrid.events.incident_events import Merged, ReportDetails, Reported
from civicgrid.events.store import ConcurrencyConflict, EventStore, History
from civicgrid.intake.admission import admit
from civicgrid.intake.catalogue import Catalogue
from civicgrid.intake.claims import CLAIM_GRACE, Claim, ClaimsView, DuplicateClaims
from civicgrid.intake.domain import decisions, duplicates, identity
from civicgrid.intake.domain.commands import Command, Merge, command_name
from civicgrid.intake.domain.decisions import CommandRejected, Context
from civicgrid.intake.domain.state import IncidentState, fold
from civicgrid.intake.errors import Refused, key_reused, not_found, rejected
from civicgrid.intake.index import IncidentIndex
from civicgrid.intake.metrics import IntakeMetrics
from civicgrid.intake.reports import ReportIn

log = structlog.get_logger("civicgrid.intake")

MAX_ATTEMPTS = 5
PENDING_PAUSE_S = 0.01
SOURCE = "intake"

ReportResult = Literal["created", "merged", "retried"]
CommandResult = Literal["applied", "already_applied"]


@dataclass(frozen=True)
class ReportOutcome:
    incident_id: str
    outcome: ReportResult
    distance_m: float | None = None
    minutes_apart: float | None = None


@dataclass(frozen=True)
class CommandOutcome:
    incident_id: str
    command: str
    outcome: CommandResult
    event_types: tuple[str, ...]
    version: int


@dataclass
class Intake:
    store: Callable[[], EventStore]
    index: IncidentIndex
    catalogue: Catalogue
    metrics: IntakeMetrics
    claims: DuplicateClaims
    clock: Callable[[], datetime] = utc_now
    _category_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    # -- reports -------------------------------------------------------------------------

    async def report(
        self,
        report: ReportIn,
        *,
        system: str,
        key: str | None,
        correlation_id: str | None = None,
    ) -> ReportOutcome:
        channel = report.channel_of().value
        try:
            admission = admit(report, self.catalogue, self.clock())
        except Refused:
            self.metrics.reports.labels(channel, "refused").inc()
            raise
        details = report.details().model_copy(update={"attributes": admission.attributes})
        draft = _ReportDraft(
            details=details,
            key=key,
            occurred_at=admission.occurred_at,
            rule=admission.matter.duplicate_rule,
            actor=Actor(kind=ActorKind.EXTERNAL_SYSTEM, id=system),
            correlation_id=correlation_id or report.correlation_id,
        )
        # One decision at a time per category in this replica: two reports of one problem
        # arriving together must not both open an incident.
        lock = self._category_locks.setdefault(details.category, asyncio.Lock())
        async with lock:
            outcome = await self._take_report(draft)
        self.metrics.reports.labels(channel, outcome.outcome).inc()
        log.info(
            "report_taken",
            incident_id=outcome.incident_id,
            channel=channel,
            outcome=outcome.outcome,
            system=system,
        )
        return outcome

    async def _take_report(self, draft: _ReportDraft) -> ReportOutcome:
        store = self.store()
        if draft.key is not None:
            known = self.index.incident_for_key(draft.key)
            if known is not None:
                return ReportOutcome(known, "retried")
            derived = identity.incident_id_for(draft.key)
            history = await store.load(derived)
            if history:
                self.index.absorb(history.events)
                return ReportOutcome(derived, "retried")
        rule = draft.rule
        attempts = 0
        # However the clock is set, waiting for another replica's claim is bounded.
        patience = time.monotonic() + CLAIM_GRACE.total_seconds()
        while attempts < MAX_ATTEMPTS:
            view = None
            if rule.merges:
                category, at = draft.details.category, draft.occurred_at
                view = await self.claims.view(category, at, rule.window_minutes)
            joined = await self._join_nearest(store, draft, view)
            if isinstance(joined, ReportOutcome):
                return joined
            if joined is _PENDING and time.monotonic() < patience:
                # Another replica claimed a matching incident and is appending it right now.
                await asyncio.sleep(PENDING_PAUSE_S)
                continue
            if joined is _NO_MATCH:
                incident_id = identity.incident_id_for(draft.key)
                now = self.clock()
                claim = Claim(incident_id, draft.details.location, draft.occurred_at, now)
                if view is None or await self.claims.claim(view, claim, rule.window_minutes):
                    return await self._open_incident(store, draft, incident_id)
            attempts += 1
            self.metrics.concurrency_retries.labels("report").inc()
        raise rejected("the incidents nearby are changing too quickly; try again")

    async def _join_nearest(
        self, store: EventStore, draft: _ReportDraft, view: ClaimsView | None
    ) -> ReportOutcome | _Retry:
        """Join the nearest open incident that fits; _NO_MATCH if none does."""
        details, rule = draft.details, draft.rule
        found = {
            m.incident_id: m
            for m in (
                duplicates.match(state, details.category, details.location, draft.occurred_at, rule)
                for state in self.index.open_in_category(details.category)
            )
            if m is not None
        }
        pending: set[str] = set()
        now = self.clock()
        for claim in view.claims() if view is not None else ():
            near = duplicates.near(
                claim.location, claim.at, details.location, draft.occurred_at, rule
            )
            if near is not None and claim.incident_id not in found:
                found[claim.incident_id] = duplicates.DuplicateMatch(claim.incident_id, *near)
                if claim.pending(now):
                    pending.add(claim.incident_id)
        for candidate in sorted(
            found.values(), key=lambda m: (m.distance_m, m.minutes_apart, m.incident_id)
        ):
            outcome = await self._join_incident(store, draft, candidate.incident_id)
            if outcome is _NOT_THERE_YET:
                if candidate.incident_id in pending:
                    return _PENDING
                continue  # a claimant that died before appending: its claim is a dead hint
            if outcome is not _NO_MATCH:
                return outcome
        return _NO_MATCH

    async def _open_incident(
        self, store: EventStore, draft: _ReportDraft, incident_id: str
    ) -> ReportOutcome:
        event_id = new_event_id()
        event = Reported(
            event_id=event_id,
            incident_id=incident_id,
            occurred_at=draft.occurred_at,
            source=SOURCE,
            actor=draft.actor,
            correlation_id=draft.correlation_id or event_id,
            report=draft.details,
            idempotency_key=draft.key,
        )
        try:
            written = await store.append_decision(
                [event], cause=_report_cause(draft, event_id), fingerprint="", expected_version=0
            )
        except ConcurrencyConflict:
            # Only a keyed report can meet an existing subject: the same key, sent again.
            self.index.absorb((await store.load(incident_id)).events)
            return ReportOutcome(incident_id, "retried")
        self.index.absorb(written)
        return ReportOutcome(incident_id, "created")

    async def _join_incident(
        self, store: EventStore, draft: _ReportDraft, incident_id: str
    ) -> ReportOutcome | _Retry:
        """Merge the report into ``incident_id``: _NO_MATCH if it does not fit (any more),
        _CONFLICT if the incident changed while we decided (read everything again)."""
        history = await store.load(incident_id)
        if not history:
            return _NOT_THERE_YET
        state = fold(incident_id, history)
        self.index.absorb(history.events)
        if draft.key is not None and draft.key in state.idempotency_keys:
            return ReportOutcome(incident_id, "retried")
        details = draft.details
        found = duplicates.match(
            state, details.category, details.location, draft.occurred_at, draft.rule
        )
        if found is None:
            return _NO_MATCH
        event = Merged(
            incident_id=incident_id,
            occurred_at=draft.occurred_at,
            source=SOURCE,
            actor=draft.actor,
            correlation_id=draft.correlation_id or state.correlation_id,
            report=details,
            distance_m=round(found.distance_m, 1),
            minutes_apart=round(found.minutes_apart, 1),
            idempotency_key=draft.key,
        )
        try:
            written = await store.append_decision(
                [event],
                cause=_report_cause(draft, event.event_id),
                fingerprint="",
                expected_version=history.version,
            )
        except ConcurrencyConflict:
            return _CONFLICT
        self.index.absorb(written)
        return ReportOutcome(incident_id, "merged", found.distance_m, found.minutes_apart)

    # -- commands ------------------------------------------------------------------------

    async def command(
        self, incident_id: str, command: Command, *, system: str, command_id: str
    ) -> CommandOutcome:
        name = command_name(command).value
        cause = Cause(
            identity.command_causation(system, command_id),
            fingerprint_of(name, command.model_dump(mode="json", exclude=_NOT_FINGERPRINTED)),
        )
        try:
            if isinstance(command, Merge):
                outcome = await self._merge(incident_id, command, system, cause)
            else:
                outcome = await self._carry_out(incident_id, command, system, cause)
        except CommandRejected as exc:
            self.metrics.commands.labels(name, "rejected").inc()
            log.info("command_rejected", incident_id=incident_id, command=name, reason=exc.reason)
            raise rejected(exc.reason) from exc
        except IdempotencyConflict as exc:
            self.metrics.commands.labels(name, "key_reused").inc()
            raise key_reused(command_id) from exc
        except DecisionContention as exc:
            self.metrics.concurrency_retries.labels(name).inc()
            raise rejected("the incident is changing too quickly; try again") from exc
        except Refused:
            self.metrics.commands.labels(name, "refused").inc()
            raise
        self.metrics.commands.labels(name, outcome.outcome).inc()
        log.info(
            "command_carried_out",
            incident_id=incident_id,
            command=name,
            outcome=outcome.outcome,
            system=system,
        )
        return outcome

    async def _carry_out(
        self, incident_id: str, command: Command, system: str, cause: Cause
    ) -> CommandOutcome:
        def decide(history: History) -> list[IncidentEvent]:
            if not history:
                raise not_found(f"incident {incident_id} does not exist", "incident_id")
            state = fold(incident_id, history)
            return decisions.decide(state, command, self._context(state, command, system, cause))

        decided = await decide_and_append(
            self.store(), incident_id, cause, decide, on_conflict=self._count_conflict(command)
        )
        self.index.absorb([*decided.history.events, *decided.written])
        return _outcome(incident_id, command, decided)

    async def _merge(
        self, incident_id: str, command: Merge, system: str, cause: Cause
    ) -> CommandOutcome:
        """The decision is the target's; the source closes as a reaction (``close_merged``)."""
        store = self.store()
        source_history = await store.load(incident_id)
        if not source_history:
            raise not_found(f"incident {incident_id} does not exist", "incident_id")
        source = fold(incident_id, source_history)
        target_id = command.into_incident_id

        def decide(target_history: History) -> list[IncidentEvent]:
            target = fold(target_id, target_history)
            context = self._context(source, command, system, cause)
            return decisions.decide_merge(source, target, command, context)

        decided = await decide_and_append(
            store, target_id, cause, decide, on_conflict=self._count_conflict(command)
        )
        self.index.absorb([*decided.history.events, *decided.written])
        outcome = _outcome(incident_id, command, decided)
        return replace(outcome, version=source_history.version)

    async def close_merged(self, merged: Merged, at_least: int) -> None:
        """Reaction to a command centre's merge: close its source, once, however often asked."""
        source_id = merged.from_incident_id
        if source_id is None:
            return

        def decide(history: History) -> list[IncidentEvent]:
            return decisions.close_merged_source(fold(source_id, history), merged)

        cause = Cause.of_reaction(SOURCE, "close-merged", merged.event_id)
        decided = await decide_and_append(self.store(), source_id, cause, decide, at_least=at_least)
        self.index.absorb([*decided.history.events, *decided.written])

    def _count_conflict(self, command: Command) -> Callable[[], None]:
        return self.metrics.concurrency_retries.labels(command_name(command).value).inc

    def _context(
        self, state: IncidentState, command: Command, system: str, cause: Cause
    ) -> Context:
        return Context(
            causation_id=cause.key,
            correlation_id=command.correlation_id or state.correlation_id or cause.key,
            now=self.clock(),
            system=system,
        )

    # -- reading -------------------------------------------------------------------------

    async def history(self, incident_id: str) -> tuple[History, IncidentState]:
        history = await self.store().load(incident_id)
        if not history:
            raise not_found(f"incident {incident_id} does not exist", "incident_id")
        self.index.absorb(history.events)
        return history, fold(incident_id, history)


@dataclass(frozen=True)
class _ReportDraft:
    details: ReportDetails
    key: str | None
    occurred_at: datetime
    rule: duplicates.DuplicateRule
    actor: Actor
    correlation_id: str | None


class _Retry(Enum):
    NO_MATCH = "no_match"
    CONFLICT = "conflict"
    NOT_THERE_YET = "not_there_yet"
    PENDING = "pending"


_NO_MATCH, _CONFLICT = _Retry.NO_MATCH, _Retry.CONFLICT
_NOT_THERE_YET, _PENDING = _Retry.NOT_THERE_YET, _Retry.PENDING


def _report_cause(draft: _ReportDraft, event_id: str) -> str:
    """A report's cause: its key when it has one (a retry is the same cause), else itself."""
    return f"report:{identity.digest(draft.key) if draft.key is not None else event_id}"


# What identifies a command's request besides its body: not part of what it asked for.
_NOT_FINGERPRINTED = {"command_id", "correlation_id"}


def _outcome(incident_id: str, command: Command, decided: Decided) -> CommandOutcome:
    events = decided.written or ()
    return CommandOutcome(
        incident_id,
        command_name(command).value,
        "applied" if decided.written else "already_applied",
        tuple(stored.event.event_type for stored in events),
        decided.version,
    )
