"""One decision per command: (state, command, context) -> the events to append, or a refusal.

A refusal (``CommandRejected``) carries a reason a person can act on; the HTTP API answers it
with 409 and writes nothing. A dissatisfied callback is one decision with two events
(recorded, then reopened) so the incident never sits resolved with an unhappy citizen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from civicgrid.events.base import Actor, ActorKind, IncidentEvent, UnitKind, UnitRef
from civicgrid.events.incident_events import (
    Accepted,
    Arrived,
    CallbackRecorded,
    Closed,
    DeadlineExtended,
    Merged,
    Reassigned,
    Reopened,
    Resolved,
    Resumed,
    Returned,
    ReturnReason,
    SlaClassOrdered,
    Suspended,
)
from civicgrid.intake.domain.commands import (
    Accept,
    Arrive,
    Callback,
    Close,
    Command,
    Extend,
    Merge,
    Reassign,
    Reclassify,
    Reopen,
    Resolve,
    Resume,
    Return,
    Suspend,
)
from civicgrid.intake.domain.duplicates import distance_m, minutes_between
from civicgrid.intake.domain.state import HANDLING, IN_PROGRESS, IncidentState, Stage

SOURCE = "intake"
EXTENSION_APPROVERS = frozenset({UnitKind.COMMAND_CENTRE, UnitKind.DEPARTMENT})


class CommandRejected(Exception):
    """The command does not fit the incident's current state: 409, nothing written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Context:
    """What a decision needs besides state and command: who, when, and what caused it."""

    causation_id: str
    correlation_id: str
    now: datetime
    system: str


Decision = list[IncidentEvent]
C = TypeVar("C", bound=Command)
_DECIDERS: dict[type[Command], Callable[[IncidentState, Any, Context], Decision]] = {}


def decider(
    command_type: type[C],
) -> Callable[[Callable[[IncidentState, C, Context], Decision]], Callable[..., Decision]]:
    def register(
        function: Callable[[IncidentState, C, Context], Decision],
    ) -> Callable[..., Decision]:
        _DECIDERS[command_type] = function
        return function

    return register


def decide(state: IncidentState, command: Command, context: Context) -> Decision:
    """The events that carry out ``command`` on ``state``; raises CommandRejected if it cannot."""
    if not state.exists:
        raise CommandRejected(f"incident {state.incident_id} does not exist")
    decide_one = _DECIDERS.get(type(command))
    if decide_one is None:
        raise TypeError(f"no decision for {type(command).__name__}")
    return decide_one(state, command, context)


def _envelope(state: IncidentState, context: Context, actor: Actor) -> dict[str, Any]:
    return {
        "incident_id": state.incident_id,
        "occurred_at": context.now,
        "source": SOURCE,
        "actor": actor,
        "correlation_id": context.correlation_id,
        "causation_id": context.causation_id,
    }


def _unit_actor(unit: UnitRef) -> Actor:
    return Actor(kind=ActorKind.UNIT, id=unit.id)


def _system_actor(context: Context) -> Actor:
    return Actor(kind=ActorKind.EXTERNAL_SYSTEM, id=context.system)


def _require_not_finished(state: IncidentState) -> None:
    if state.stage is Stage.CLOSED:
        raise CommandRejected(_closed_reason(state))
    if state.stage is Stage.RESOLVED:
        raise CommandRejected("incident is already resolved")


def _closed_reason(state: IncidentState) -> str:
    if state.merged_into:
        return f"incident was merged into {state.merged_into}"
    return "incident is closed"


def _require_lead(state: IncidentState, unit: UnitRef) -> None:
    if state.lead_unit is None:
        raise CommandRejected("incident is not assigned to any unit at the moment")
    if not state.led_by(unit):
        lead = state.lead_unit
        raise CommandRejected(
            f"unit {unit.kind.value}:{unit.id} is not the assigned lead unit"
            f" ({lead.kind.value}:{lead.id})"
        )


def _require_not_suspended(state: IncidentState) -> None:
    if state.suspended:
        raise CommandRejected("incident is suspended; resume it first")


def _require_command_centre(unit: UnitRef | None, what: str) -> None:
    if unit is None or unit.kind is not UnitKind.COMMAND_CENTRE:
        raise CommandRejected(f"only the command centre may {what}")


@decider(Accept)
def accept(state: IncidentState, command: Accept, context: Context) -> Decision:
    _require_not_finished(state)
    if state.stage in (Stage.ACCEPTED, Stage.ARRIVED):
        raise CommandRejected("incident is already accepted")
    if state.stage is not Stage.ASSIGNED:
        raise CommandRejected("incident is not assigned yet")
    _require_lead(state, command.unit)
    return [Accepted(**_envelope(state, context, _unit_actor(command.unit)), unit=command.unit)]


@decider(Arrive)
def arrive(state: IncidentState, command: Arrive, context: Context) -> Decision:
    _require_not_finished(state)
    if state.stage is Stage.ARRIVED:
        raise CommandRejected("arrival is already recorded")
    if state.stage is not Stage.ACCEPTED:
        raise CommandRejected("incident must be accepted before arrival")
    _require_lead(state, command.unit)
    _require_not_suspended(state)
    envelope = _envelope(state, context, _unit_actor(command.unit))
    return [Arrived(**envelope, unit=command.unit, location=command.location)]


@decider(Return)
def return_dispatch(state: IncidentState, command: Return, context: Context) -> Decision:
    _require_not_finished(state)
    if state.stage not in HANDLING:
        raise CommandRejected("only an assigned incident can be returned")
    _require_lead(state, command.unit)
    _require_not_suspended(state)
    if command.reason_code is ReturnReason.OTHER and not command.note.strip():
        raise CommandRejected("a return for 'other' reasons needs a note")
    envelope = _envelope(state, context, _unit_actor(command.unit))
    return [
        Returned(
            **envelope,
            unit=command.unit,
            reason_code=command.reason_code,
            note=command.note,
            corrected_location=command.corrected_location,
            corrected_category=command.corrected_category,
        )
    ]


@decider(Suspend)
def suspend(state: IncidentState, command: Suspend, context: Context) -> Decision:
    _require_not_finished(state)
    if state.suspended:
        raise CommandRejected("incident is already suspended")
    if state.stage not in (Stage.ACCEPTED, Stage.ARRIVED):
        raise CommandRejected("only an accepted incident can be suspended")
    _require_lead(state, command.unit)
    envelope = _envelope(state, context, _unit_actor(command.unit))
    return [Suspended(**envelope, unit=command.unit, reason=command.reason)]


@decider(Resume)
def resume(state: IncidentState, command: Resume, context: Context) -> Decision:
    if not state.suspended:
        raise CommandRejected("incident is not suspended")
    if command.unit.kind is not UnitKind.COMMAND_CENTRE:
        _require_lead(state, command.unit)
    return [Resumed(**_envelope(state, context, _unit_actor(command.unit)), unit=command.unit)]


@decider(Extend)
def extend(state: IncidentState, command: Extend, context: Context) -> Decision:
    _require_not_finished(state)
    if command.approved_by.kind not in EXTENSION_APPROVERS:
        raise CommandRejected("an extension must be approved by the command centre or a department")
    current_due = state.clocks.get(command.clock)
    if current_due is None:
        raise CommandRejected(f"the {command.clock} clock is not running")
    if command.new_due_at <= context.now:
        raise CommandRejected("the new deadline must be in the future")
    if command.new_due_at <= current_due:
        raise CommandRejected(
            f"the new deadline must be later than the current one ({current_due.isoformat()})"
        )
    envelope = _envelope(state, context, _unit_actor(command.approved_by))
    return [
        DeadlineExtended(
            **envelope,
            clock=command.clock,
            new_due_at=command.new_due_at,
            approved_by=command.approved_by,
            reason=command.reason,
        )
    ]


@decider(Resolve)
def resolve(state: IncidentState, command: Resolve, context: Context) -> Decision:
    _require_not_finished(state)
    if state.stage not in (Stage.ACCEPTED, Stage.ARRIVED):
        raise CommandRejected("incident must be accepted before it can be resolved")
    _require_lead(state, command.unit)
    _require_not_suspended(state)
    if state.on_site and state.stage is not Stage.ARRIVED:
        raise CommandRejected("an on-site matter needs arrival on site before it is resolved")
    envelope = _envelope(state, context, _unit_actor(command.unit))
    return [Resolved(**envelope, unit=command.unit, resolution=command.resolution)]


@decider(Callback)
def callback(state: IncidentState, command: Callback, context: Context) -> Decision:
    if state.stage is not Stage.RESOLVED:
        raise CommandRejected("a callback is recorded after resolution and before closing")
    if state.callback_satisfied is not None:
        raise CommandRejected("a callback is already recorded for this resolution")
    actor = _unit_actor(command.unit) if command.unit else _system_actor(context)
    envelope = _envelope(state, context, actor)
    recorded = CallbackRecorded(
        **envelope, satisfied=command.satisfied, rating=command.rating, comment=command.comment
    )
    if command.satisfied:
        return [recorded]
    return [recorded, Reopened(**envelope, reason="the citizen was not satisfied at callback")]


@decider(Close)
def close(state: IncidentState, command: Close, context: Context) -> Decision:
    if state.stage is Stage.CLOSED:
        raise CommandRejected(f"{_closed_reason(state)} already")
    if state.stage is not Stage.RESOLVED:
        _require_command_centre(command.unit, "close an incident that is not resolved")
        if not command.reason.strip():
            raise CommandRejected("closing an unresolved incident needs a reason")
    actor = _unit_actor(command.unit) if command.unit else _system_actor(context)
    return [Closed(**_envelope(state, context, actor), reason=command.reason)]


@decider(Reopen)
def reopen(state: IncidentState, command: Reopen, context: Context) -> Decision:
    if state.merged_into:
        raise CommandRejected(f"{_closed_reason(state)}; reopen that one")
    if state.stage not in (Stage.RESOLVED, Stage.CLOSED):
        raise CommandRejected("only a resolved or closed incident can be reopened")
    if command.unit is not None:
        actor = _unit_actor(command.unit)
    else:
        actor = Actor(kind=ActorKind.CITIZEN, id=f"via-{context.system}")
    return [Reopened(**_envelope(state, context, actor), reason=command.reason)]


@decider(Reassign)
def reassign(state: IncidentState, command: Reassign, context: Context) -> Decision:
    _require_command_centre(command.unit, "reassign an incident")
    _require_not_finished(state)
    pending = state.pending_reassignment
    if pending is not None and (pending.to_unit, pending.to_level) == (
        command.to_unit,
        command.to_level,
    ):
        raise CommandRejected("the same reassignment is already pending with routing")
    if (
        command.to_unit is not None
        and state.lead_unit is not None
        and state.led_by(command.to_unit)
    ):
        raise CommandRejected(
            f"incident is already assigned to {command.to_unit.kind.value}:{command.to_unit.id}"
        )
    envelope = _envelope(state, context, _unit_actor(command.unit))
    return [
        Reassigned(
            **envelope, reason=command.reason, to_unit=command.to_unit, to_level=command.to_level
        )
    ]


@decider(Reclassify)
def reclassify(state: IncidentState, command: Reclassify, context: Context) -> Decision:
    """Whether the class is one the city has is checked before (422, it is about the request).

    Ordering the class the incident already runs under is refused (409), as every command
    the state already reflects is: nothing would change, and no clock should restart.
    """
    _require_command_centre(command.unit, "order an incident's SLA class")
    _require_not_finished(state)
    if state.sla_class == command.sla_class:
        raise CommandRejected(f"incident is already in SLA class {command.sla_class!r}")
    envelope = _envelope(state, context, _unit_actor(command.unit))
    return [
        SlaClassOrdered(
            **envelope,
            sla_class=command.sla_class,
            previous_class=state.sla_class,
            ordered_by=command.unit,
            reason=command.reason,
        )
    ]


@decider(Merge)
def _merge_needs_both(state: IncidentState, command: Merge, context: Context) -> Decision:
    raise TypeError("merge touches two incidents: use decide_merge")


def decide_merge(
    source: IncidentState, target: IncidentState, command: Merge, context: Context
) -> Decision:
    """并单 by the command centre: ``source``'s report joins ``target``.

    The decision writes to the target only; closing the source is a reaction to the
    ``merged`` event (``close_merged_source``), retried by the event flow until done.
    """
    _require_command_centre(command.unit, "merge incidents")
    if not source.exists:
        raise CommandRejected(f"incident {source.incident_id} does not exist")
    if not target.exists:
        raise CommandRejected(f"incident {target.incident_id} does not exist")
    if source.incident_id == target.incident_id:
        raise CommandRejected("an incident cannot be merged into itself")
    if source.incident_id in target.merged_from:
        raise CommandRejected(f"incident was merged into {target.incident_id} already")
    for state in (source, target):
        if state.stage is Stage.CLOSED:
            raise CommandRejected(f"{state.incident_id}: {_closed_reason(state)}")
        if state.stage not in IN_PROGRESS:
            raise CommandRejected(f"{state.incident_id}: incident is {state.stage.value}")
    assert source.report is not None and target.report is not None
    actor = _unit_actor(command.unit)
    return [
        Merged(
            **_envelope(target, context, actor),
            report=source.report,
            distance_m=distance_m(source.report.location, target.report.location),
            minutes_apart=minutes_between(source.reported_at, target.reported_at),
            from_incident_id=source.incident_id,
        )
    ]


def close_merged_source(source: IncidentState, merged: Merged) -> Decision:
    """The reaction to a command centre's merge: close the incident that now lives on there."""
    if not source.exists or source.stage is Stage.CLOSED:
        return []
    return [
        Closed(
            incident_id=source.incident_id,
            occurred_at=merged.occurred_at,
            source=SOURCE,
            actor=merged.actor,
            correlation_id=merged.correlation_id,
            causation_id=merged.event_id,
            reason=f"merged into {merged.incident_id} by the command centre",
            merged_into=merged.incident_id,
        )
    ]
