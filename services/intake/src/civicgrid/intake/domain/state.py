"""An incident's state is a fold over its own events, in stream order.

The fold is total: every event type moves the state somewhere (or nowhere), and none raises,
because stored events are facts. Commands are checked against this state in ``decisions``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import singledispatch

from civicgrid.events.base import IncidentEvent, UnitRef
from civicgrid.events.incident_events import (
    Accepted,
    Arrived,
    Assigned,
    CallbackRecorded,
    Closed,
    DeadlineExtended,
    Merged,
    Reassigned,
    Reopened,
    ReportDetails,
    Reported,
    Resolved,
    Resumed,
    Returned,
    SlaClassOrdered,
    SlaClockResumed,
    SlaClockStarted,
    SlaClockStopped,
    Suspended,
)

RESOLVE_CLOCK = "resolve"


class Stage(StrEnum):
    NEW = "new"  # no events: the incident does not exist
    AWAITING_ASSIGNMENT = "awaiting_assignment"  # reported, returned, reopened, reassigned
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    ARRIVED = "arrived"
    RESOLVED = "resolved"
    CLOSED = "closed"


HANDLING = frozenset({Stage.ASSIGNED, Stage.ACCEPTED, Stage.ARRIVED})
IN_PROGRESS = frozenset({Stage.AWAITING_ASSIGNMENT, *HANDLING})


@dataclass(frozen=True, slots=True)
class IncidentState:
    incident_id: str
    stage: Stage = Stage.NEW
    report: ReportDetails | None = None
    category: str = ""
    reported_at: datetime | None = None
    updated_at: datetime | None = None
    correlation_id: str = ""
    lead_unit: UnitRef | None = None
    on_site: bool = False
    # The SLA class the clocks run under: the command centre's order if there is one (it
    # stands over later assignments), else the last assignment's (from the matter).
    assigned_class: str | None = None
    ordered_class: str | None = None
    suspended: bool = False
    callback_satisfied: bool | None = None
    resolution: str = ""
    # Running SLA clocks and their current due time (started, moved by extensions).
    clocks: Mapping[str, datetime] = field(default_factory=dict)
    resolve_due_at: datetime | None = None
    merged_into: str | None = None
    # Incidents the command centre merged into this one (their sources close as a reaction).
    merged_from: frozenset[str] = frozenset()
    # The command centre's order to route again, until routing carries it out.
    pending_reassignment: Reassigned | None = None
    merged_reports: int = 0
    returns: int = 0
    # What makes a retry recognisable: report idempotency keys and command causation ids.
    idempotency_keys: frozenset[str] = frozenset()
    causations: frozenset[str] = frozenset()

    @property
    def exists(self) -> bool:
        return self.stage is not Stage.NEW

    @property
    def is_open(self) -> bool:
        """Open in Open311's sense: still being handled, so a duplicate may join it."""
        return self.stage in IN_PROGRESS

    @property
    def sla_class(self) -> str | None:
        return self.ordered_class or self.assigned_class

    def led_by(self, unit: UnitRef) -> bool:
        lead = self.lead_unit
        return lead is not None and (lead.kind, lead.id) == (unit.kind, unit.id)


def fold(incident_id: str, events: Iterable[IncidentEvent]) -> IncidentState:
    state = IncidentState(incident_id)
    for event in events:
        state = apply(state, event)
    return state


def apply(state: IncidentState, event: IncidentEvent) -> IncidentState:
    moved = _apply(event, state)
    causations = state.causations
    if event.causation_id is not None and event.causation_id not in causations:
        causations = causations | {event.causation_id}
    return replace(moved, updated_at=event.occurred_at, causations=causations)


@singledispatch
def _apply(event: IncidentEvent, state: IncidentState) -> IncidentState:
    # Warnings, breaches and escalations do not change what a handler may do next.
    return state


@_apply.register
def _(event: Reported, state: IncidentState) -> IncidentState:
    return replace(
        state,
        stage=Stage.AWAITING_ASSIGNMENT,
        report=event.report,
        category=event.report.category,
        reported_at=event.occurred_at,
        correlation_id=event.correlation_id,
        idempotency_keys=_with_key(state, event.idempotency_key),
    )


@_apply.register
def _(event: Merged, state: IncidentState) -> IncidentState:
    merged_from = state.merged_from
    if event.from_incident_id is not None:
        merged_from = merged_from | {event.from_incident_id}
    return replace(
        state,
        merged_reports=state.merged_reports + 1,
        merged_from=merged_from,
        idempotency_keys=_with_key(state, event.idempotency_key),
    )


@_apply.register
def _(event: Assigned, state: IncidentState) -> IncidentState:
    if state.stage in (Stage.RESOLVED, Stage.CLOSED):
        # A late assignment does not reopen anything; the record keeps who it named.
        return replace(state, lead_unit=event.lead_unit)
    return replace(
        state,
        stage=Stage.ASSIGNED,
        lead_unit=event.lead_unit,
        on_site=event.on_site,
        assigned_class=event.sla_class,
        suspended=False,
        pending_reassignment=None,
    )


@_apply.register
def _(event: Accepted, state: IncidentState) -> IncidentState:
    return replace(state, stage=Stage.ACCEPTED)


@_apply.register
def _(event: Arrived, state: IncidentState) -> IncidentState:
    return replace(state, stage=Stage.ARRIVED)


@_apply.register
def _(event: Returned, state: IncidentState) -> IncidentState:
    return replace(
        state,
        stage=Stage.AWAITING_ASSIGNMENT,
        lead_unit=None,
        suspended=False,
        returns=state.returns + 1,
        category=event.corrected_category or state.category,
    )


@_apply.register
def _(event: Suspended, state: IncidentState) -> IncidentState:
    return replace(state, suspended=True)


@_apply.register
def _(event: Resumed, state: IncidentState) -> IncidentState:
    return replace(state, suspended=False)


@_apply.register
def _(event: DeadlineExtended, state: IncidentState) -> IncidentState:
    return _with_clock(state, event.clock, event.new_due_at)


@_apply.register
def _(event: SlaClockStarted, state: IncidentState) -> IncidentState:
    return _with_clock(state, event.clock, event.due_at)


@_apply.register
def _(event: SlaClockResumed, state: IncidentState) -> IncidentState:
    # (sla) A resumed clock is due later by the time it was paused: Open311's expected_datetime.
    return _with_clock(state, event.clock, event.due_at)


@_apply.register
def _(event: SlaClockStopped, state: IncidentState) -> IncidentState:
    clocks = {name: due for name, due in state.clocks.items() if name != event.clock}
    return replace(state, clocks=clocks)


@_apply.register
def _(event: Resolved, state: IncidentState) -> IncidentState:
    return replace(
        state,
        stage=Stage.RESOLVED,
        suspended=False,
        resolution=event.resolution,
        callback_satisfied=None,
    )


@_apply.register
def _(event: CallbackRecorded, state: IncidentState) -> IncidentState:
    return replace(state, callback_satisfied=event.satisfied)


@_apply.register
def _(event: Closed, state: IncidentState) -> IncidentState:
    return replace(state, stage=Stage.CLOSED, suspended=False, merged_into=event.merged_into)


@_apply.register
def _(event: Reopened, state: IncidentState) -> IncidentState:
    return replace(
        state,
        stage=Stage.AWAITING_ASSIGNMENT,
        lead_unit=None,
        suspended=False,
        resolution="",
        callback_satisfied=None,
    )


@_apply.register
def _(event: SlaClassOrdered, state: IncidentState) -> IncidentState:
    return replace(state, ordered_class=event.sla_class)


@_apply.register
def _(event: Reassigned, state: IncidentState) -> IncidentState:
    return replace(
        state,
        stage=Stage.AWAITING_ASSIGNMENT,
        lead_unit=None,
        suspended=False,
        pending_reassignment=event,
    )


def _with_key(state: IncidentState, key: str | None) -> frozenset[str]:
    return state.idempotency_keys if key is None else state.idempotency_keys | {key}


def _with_clock(state: IncidentState, clock: str, due_at: datetime) -> IncidentState:
    clocks = {**state.clocks, clock: due_at}
    resolve_due_at = due_at if clock == RESOLVE_CLOCK else state.resolve_due_at
    return replace(state, clocks=clocks, resolve_due_at=resolve_due_at)
