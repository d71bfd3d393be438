"""From an incident's history to the assignments routing still owes it.

Routing is a function of the incident's ordered history: each trigger (reported, returned,
reopened, escalated, reassigned) is decided on the state left by the triggers before it and
their assignments. A handler brings the incident up to date through the event it was woken
by, deciding every trigger up to it that has no assignment yet. So two replicas, or a
redelivery, or triggers handled out of order, all reach the same assignments, and each
assignment is written once (its message id is derived from its cause).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from civicgrid.events.base import IncidentEvent
from civicgrid.events.incident_events import (
    Assigned,
    Escalated,
    Reassigned,
    Reopened,
    Reported,
    Returned,
)
from civicgrid.routing.domain.city import CityMap
from civicgrid.routing.domain.decision import Context, Decision, Ignored
from civicgrid.routing.domain.moves import follow_order, move_up, route_reopened
from civicgrid.routing.domain.policy import RoutingPolicy
from civicgrid.routing.domain.returns import after_return
from civicgrid.routing.domain.routing import route_new_report
from civicgrid.routing.domain.state import RoutingState, evolve

TRIGGERS = (Reported, Returned, Reopened, Escalated, Reassigned)


def is_trigger(event: IncidentEvent) -> bool:
    return isinstance(event, TRIGGERS)


def decide(
    state: RoutingState, event: IncidentEvent, city: CityMap, policy: RoutingPolicy
) -> Assigned | Ignored:
    """The assignment this trigger calls for, given the state before it, or why there is none."""
    outcome = decide_what(Context(city, policy), state, event)
    if isinstance(outcome, Ignored):
        return outcome
    return outcome.assigned(
        cause=event, assignment_no=state.assignments + 1, policy_version=policy.policy_version
    )


def decide_what(ctx: Context, state: RoutingState, event: IncidentEvent) -> Decision | Ignored:
    if isinstance(event, Reported):
        if state.current is not None:
            return Ignored("already_assigned", "reported after an assignment")
        return route_new_report(ctx, event.report.category, event.report.location)
    if isinstance(event, Returned):
        return after_return(ctx, state, event)
    if isinstance(event, Escalated):
        return move_up(ctx, state, event)
    if isinstance(event, Reopened):
        return route_reopened(ctx, state, event)
    if isinstance(event, Reassigned):
        return follow_order(ctx, state, event)
    return Ignored("not_a_trigger", f"routing does not act on {event.event_type}")


def policy_version_of(events: Sequence[IncidentEvent]) -> int | None:
    """The version an incident decides with: its first assignment's, None before it has one."""
    for event in events:
        if isinstance(event, Assigned):
            return event.policy_version
    return None


@dataclass
class Plan:
    assignments: list[Assigned] = field(default_factory=list)
    ignored: list[tuple[IncidentEvent, Ignored]] = field(default_factory=list)
    cause_found: bool = False


def plan_routing(
    events: Sequence[IncidentEvent], cause_id: str, city: CityMap, policy: RoutingPolicy
) -> Plan:
    """The assignments still owed, in order, for every trigger up to ``cause_id``.

    A trigger before the last one that has an assignment is settled: if it has none, it called
    for none when it was decided, and code deployed since does not rewrite the past.
    """
    triggers = [event.event_id for event in events if is_trigger(event)]
    trigger_ids = frozenset(triggers)
    assigned_for = {
        event.causation_id: event
        for event in events
        if isinstance(event, Assigned) and event.causation_id in trigger_ids
    }
    settled_until = max(
        (index for index, event_id in enumerate(triggers) if event_id in assigned_for),
        default=-1,
    )
    plan = Plan()
    state = RoutingState(events[0].incident_id if events else "")
    trigger_index = -1
    for event in events:
        if isinstance(event, Assigned) and event.causation_id in assigned_for:
            continue  # applied right after its cause, below
        if not is_trigger(event):
            state = evolve(state, event)
            continue
        trigger_index += 1
        stored = assigned_for.get(event.event_id)
        if stored is not None or trigger_index < settled_until:
            state = evolve(state, event)
            if stored is not None:
                state = evolve(state, stored)
        else:
            outcome = decide(state, event, city, policy)
            state = evolve(state, event)
            if isinstance(outcome, Ignored):
                plan.ignored.append((event, outcome))
            else:
                plan.assignments.append(outcome)
                state = evolve(state, outcome)
        if event.event_id == cause_id:
            plan.cause_found = True
            break
    return plan
