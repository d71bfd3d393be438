"""Taking a report: admit it, join the nearest open incident it duplicates, or open one.

Of two reports of one problem, at one replica or two, one opens the incident and the other
joins it: a report that finds nothing to join in the index claims its new incident
(``claims``) and then reads the claims near it; an earlier one wins, and a claim whose incident
is still on its way is waited for, briefly. Nothing else makes reports wait for each other: not
a lock per matter, only one merge at a time into one incident in this replica. Every append is
one decision with the report's cause (its key, when it has one), expecting the version it was
decided on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

import structlog

from civicgrid.events.base import Actor, ActorKind
from civicgrid.events.ids import new_event_id
from civicgrid.events.incident_events import Merged, ReportDetails, Reported
from civicgrid.events.store import ConcurrencyConflict, EventStore
from civicgrid.intake.admission import admit
from civicgrid.intake.claims import CLAIM_GRACE, Claim, Claimed
from civicgrid.intake.domain import duplicates, identity
from civicgrid.intake.domain.state import IncidentState, fold
from civicgrid.intake.errors import Refused, rejected
from civicgrid.intake.outcomes import ReportOutcome
from civicgrid.intake.reports import ReportIn

if TYPE_CHECKING:
    from civicgrid.intake.handlers import Intake

log = structlog.get_logger("civicgrid.intake")

MAX_ATTEMPTS = 5
PENDING_PAUSE_S = 0.01
SOURCE = "intake"


async def take_report(
    ports: Intake,
    report: ReportIn,
    *,
    system: str,
    key: str | None,
    correlation_id: str | None = None,
) -> ReportOutcome:
    channel = report.channel_of().value
    try:
        admission = admit(report, ports.catalogue, ports.clock())
    except Refused:
        ports.metrics.reports.labels(channel, "refused").inc()
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
    outcome = await _take_report(ports, draft)
    ports.metrics.reports.labels(channel, outcome.outcome).inc()
    log.info(
        "report_taken",
        incident_id=outcome.incident_id,
        channel=channel,
        outcome=outcome.outcome,
        system=system,
    )
    return outcome


async def _take_report(ports: Intake, draft: _ReportDraft) -> ReportOutcome:
    store = ports.store()
    if draft.key is not None:
        known = ports.index.incident_for_key(draft.key)
        if known is not None:
            return ReportOutcome(known, "retried")
        derived = identity.incident_id_for(draft.key)
        history = await store.load(derived)
        if history:
            ports.index.absorb(history.events)
            return ReportOutcome(derived, "retried")
    rule = draft.rule
    attempts = 0
    mine: Claimed | None = None  # this report's claim, once written
    earlier: list[Claim] = []  # the claims near it written before it
    # However the clock is set, waiting for another replica's claim is bounded.
    patience = time.monotonic() + CLAIM_GRACE.total_seconds()
    while attempts < MAX_ATTEMPTS:
        joined = await _join_nearest(ports, store, draft, earlier)
        if isinstance(joined, ReportOutcome):
            if mine is not None:
                await ports.claims.withdraw(mine)
            return joined
        if joined is _NO_MATCH:
            if mine is not None or not rule.merges:
                incident_id = mine.claim.incident_id if mine is not None else None
                return await _open_incident(ports, store, draft, incident_id)
            claim = Claim(
                identity.incident_id_for(draft.key),
                draft.details.location,
                draft.occurred_at,
                ports.clock(),
            )
            mine, earlier = await ports.claims.claim(draft.details.category, claim, rule)
            continue
        if joined is _PENDING and time.monotonic() < patience:
            # Another report claimed a matching incident first and is appending it right now.
            await asyncio.sleep(PENDING_PAUSE_S)
        else:
            attempts += 1
            ports.metrics.concurrency_retries.labels("report").inc()
        if mine is not None:
            earlier = await ports.claims.earlier_near(mine, rule)
    raise rejected("the incidents nearby are changing too quickly; try again")


async def _join_nearest(
    ports: Intake, store: EventStore, draft: _ReportDraft, claims: list[Claim]
) -> ReportOutcome | _Retry:
    """Join the nearest open incident that fits, in the index or claimed earlier; _NO_MATCH
    if none does."""
    details, rule = draft.details, draft.rule
    found = {
        m.incident_id: m
        for m in (
            duplicates.match(state, details.category, details.location, draft.occurred_at, rule)
            for state in ports.index.open_near(details.category, details.location, rule.radius_m)
        )
        if m is not None
    }
    pending: set[str] = set()
    now = ports.clock()
    for claim in claims:
        near = duplicates.near(claim.location, claim.at, details.location, draft.occurred_at, rule)
        if near is not None and claim.incident_id not in found:
            found[claim.incident_id] = duplicates.DuplicateMatch(claim.incident_id, *near)
            if claim.pending(now):
                pending.add(claim.incident_id)
    for candidate in sorted(
        found.values(), key=lambda m: (m.distance_m, m.minutes_apart, m.incident_id)
    ):
        async with ports.incident_locks.holding(candidate.incident_id):
            outcome = await _join_incident(ports, store, draft, candidate.incident_id)
        if outcome is _NOT_THERE_YET:
            if candidate.incident_id in pending:
                return _PENDING
            continue  # a claimant that died before appending: its claim is a dead hint
        if outcome is not _NO_MATCH:
            return outcome
    return _NO_MATCH


async def _open_incident(
    ports: Intake, store: EventStore, draft: _ReportDraft, incident_id: str | None
) -> ReportOutcome:
    incident_id = incident_id or identity.incident_id_for(draft.key)
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
        ports.index.absorb((await store.load(incident_id)).events)
        return ReportOutcome(incident_id, "retried")
    ports.index.absorb(written)
    return ReportOutcome(incident_id, "created")


async def _join_incident(
    ports: Intake, store: EventStore, draft: _ReportDraft, incident_id: str
) -> ReportOutcome | _Retry:
    """Merge the report into ``incident_id``: _NO_MATCH if it does not fit (any more),
    _CONFLICT if the incident changed while we decided (read everything again).

    Decided first on what the index knows, which is current unless another replica or the
    flow wrote since: the append's expected sequence tells, and then the history is read."""
    known = ports.index.decided_on(incident_id)
    if known is not None:
        outcome = await _merge(ports, store, draft, *known)
        if outcome is not _CONFLICT:
            return outcome
    history = await store.load(incident_id)
    if not history:
        return _NOT_THERE_YET
    ports.index.absorb(history.events)
    return await _merge(ports, store, draft, fold(incident_id, history), history.version)


async def _merge(
    ports: Intake, store: EventStore, draft: _ReportDraft, state: IncidentState, version: int
) -> ReportOutcome | _Retry:
    if draft.key is not None and draft.key in state.idempotency_keys:
        return ReportOutcome(state.incident_id, "retried")
    details = draft.details
    found = duplicates.match(
        state, details.category, details.location, draft.occurred_at, draft.rule
    )
    if found is None:
        return _NO_MATCH
    event = Merged(
        incident_id=state.incident_id,
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
            expected_version=version,
        )
    except ConcurrencyConflict:
        return _CONFLICT
    ports.index.absorb(written)
    return ReportOutcome(state.incident_id, "merged", found.distance_m, found.minutes_apart)


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
