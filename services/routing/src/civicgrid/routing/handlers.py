"""Reactions to incident events: load the incident, decide, append with optimistic concurrency.

Every handler brings the incident's routing up to date through the event that woke it
(``plan_routing``), as one decision (``decide_and_append``) whose cause is
``routing:<causing event id>``: a second replica or a redelivery writes nothing new, and a
conflict means "reload and decide again".
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from civicgrid.events.base import IncidentEvent
from civicgrid.events.decide import Cause, DecisionStore, decide_and_append
from civicgrid.events.incident_events import (
    Assigned,
    Escalated,
    Reassigned,
    Reopened,
    Reported,
    Returned,
)
from civicgrid.events.store import History
from civicgrid.routing.domain.city import CityMap
from civicgrid.routing.domain.decide import plan_routing, policy_version_of
from civicgrid.routing.domain.policy import RoutingPolicy
from civicgrid.routing.metrics import RoutingMetrics

log = structlog.get_logger("civicgrid.routing")

MAX_ATTEMPTS = 8


class PolicySource(Protocol):
    async def current(self) -> RoutingPolicy: ...

    async def version(self, number: int) -> RoutingPolicy: ...


@dataclass(frozen=True)
class RoutingPorts:
    store: DecisionStore
    city: CityMap
    policies: PolicySource
    metrics: RoutingMetrics


class CauseNotInHistory(Exception):
    """The event is not (yet) readable from its incident's history; retried later."""


def cause_of(trigger: IncidentEvent) -> Cause:
    """Routing's decision on a trigger is made once, whichever replica or delivery makes it."""
    return Cause(f"routing:{trigger.event_id}")


async def when_incident_reported_route_it(
    event: Reported, ports: RoutingPorts, at_least: int = 0
) -> None:
    await bring_routing_up_to_date(event, ports, at_least)


async def when_incident_returned_reroute(
    event: Returned, ports: RoutingPorts, at_least: int = 0
) -> None:
    await bring_routing_up_to_date(event, ports, at_least)


async def when_escalation_requests_reassignment_move_up(
    event: Escalated, ports: RoutingPorts, at_least: int = 0
) -> None:
    if not event.request_reassignment:
        return  # a notification rung: nothing for routing (no need to read the history)
    await bring_routing_up_to_date(event, ports, at_least)


async def when_incident_reopened_route_again(
    event: Reopened, ports: RoutingPorts, at_least: int = 0
) -> None:
    await bring_routing_up_to_date(event, ports, at_least)


async def when_command_centre_reassigns_follow_the_order(
    event: Reassigned, ports: RoutingPorts, at_least: int = 0
) -> None:
    await bring_routing_up_to_date(event, ports, at_least)


HANDLERS: Mapping[str, Callable[..., Awaitable[None]]] = {
    "reported": when_incident_reported_route_it,
    "returned": when_incident_returned_reroute,
    "escalated": when_escalation_requests_reassignment_move_up,
    "reopened": when_incident_reopened_route_again,
    "reassigned": when_command_centre_reassigns_follow_the_order,
}


async def handle(event: IncidentEvent, ports: RoutingPorts, at_least: int = 0) -> None:
    handler = HANDLERS.get(event.event_type)
    if handler is not None:
        await handler(event, ports, at_least)


async def bring_routing_up_to_date(
    cause: IncidentEvent, ports: RoutingPorts, at_least: int = 0
) -> list[Assigned]:
    """Decide and append what the incident is owed through ``cause``; returns what we wrote.

    One atomic decision: every assignment the history is owed (normally one), on the history
    that was read, or nothing; a concurrent writer means reading and deciding again.
    """
    started = time.perf_counter()

    async def decide(history: History) -> list[Assigned]:
        events = list(history)
        version = policy_version_of(events)
        policy = (
            await ports.policies.version(version)
            if version is not None
            else await ports.policies.current()
        )
        plan = plan_routing(events, cause.event_id, ports.city, policy)
        if not plan.cause_found:
            raise CauseNotInHistory(f"{cause.event_type} {cause.event_id} not in the history")
        for trigger, ignored in plan.ignored:
            if trigger.event_id == cause.event_id:
                ports.metrics.ignored.labels(cause.event_type, ignored.code).inc()
                log.info("routing_not_needed", reason=ignored.code, detail=ignored.reason)
        return list(plan.assignments)

    decided = await decide_and_append(
        ports.store,
        cause.incident_id,
        cause_of(cause),
        decide,
        at_least=at_least,
        max_attempts=MAX_ATTEMPTS,
        on_conflict=ports.metrics.conflicts.inc,
    )
    cause_types = {event.event_id: event.event_type for event in decided.history}
    written = [stored.event for stored in decided.written if isinstance(stored.event, Assigned)]
    for assigned in written:
        ports.metrics.assigned(assigned, cause_types.get(assigned.causation_id or "", "unknown"))
        log.info(
            "assigned",
            cause=cause_types.get(assigned.causation_id or "", "unknown"),
            level=assigned.level.value,
            lead_unit=assigned.lead_unit.id,
            rule=assigned.rule,
            assignment_no=assigned.assignment_no,
            policy_version=assigned.policy_version,
            final_ruling=assigned.final_ruling,
        )
    ports.metrics.handling.observe(time.perf_counter() - started)
    return written
