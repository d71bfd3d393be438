"""Reactions to incident events: load the incident, decide, append with optimistic concurrency.

Every handler brings the incident's routing up to date through the event that woke it
(``plan_routing``). Each assignment is appended with ``expected_version`` = the history it was
decided on and ``msg_id`` = ``routing:<causing event id>``: a second replica or a redelivery
writes nothing new, and a conflict means "reload and decide again".
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from civicgrid.events.base import IncidentEvent
from civicgrid.events.incident_events import (
    Assigned,
    Escalated,
    Reassigned,
    Reopened,
    Reported,
    Returned,
)
from civicgrid.events.store import AppendResult, ConcurrencyConflict, History
from civicgrid.routing.domain.city import CityMap
from civicgrid.routing.domain.decide import plan_routing, policy_version_of
from civicgrid.routing.domain.policy import RoutingPolicy
from civicgrid.routing.metrics import RoutingMetrics

log = structlog.get_logger("civicgrid.routing")

MAX_ATTEMPTS = 8


class IncidentStore(Protocol):
    async def load(self, incident_id: str) -> History: ...

    async def append(
        self, event: IncidentEvent, *, msg_id: str, expected_version: int | None
    ) -> AppendResult: ...


class PolicySource(Protocol):
    async def current(self) -> RoutingPolicy: ...

    async def version(self, number: int) -> RoutingPolicy: ...


@dataclass(frozen=True)
class RoutingPorts:
    store: IncidentStore
    city: CityMap
    policies: PolicySource
    metrics: RoutingMetrics


class RoutingContention(Exception):
    """The incident kept changing under us; the consumer retries the message later."""


class CauseNotInHistory(Exception):
    """The event is not (yet) readable from its incident's history; retried later."""


class _Superseded(Exception):
    """Someone else wrote one of our assignments first: reload before writing the rest."""


def msg_id_for(assigned: Assigned) -> str:
    return f"routing:{assigned.causation_id}"


async def when_incident_reported_route_it(event: Reported, ports: RoutingPorts) -> None:
    await bring_routing_up_to_date(event, ports)


async def when_incident_returned_reroute(event: Returned, ports: RoutingPorts) -> None:
    await bring_routing_up_to_date(event, ports)


async def when_escalation_requests_reassignment_move_up(
    event: Escalated, ports: RoutingPorts
) -> None:
    if not event.request_reassignment:
        return  # a notification rung: nothing for routing (no need to read the history)
    await bring_routing_up_to_date(event, ports)


async def when_incident_reopened_route_again(event: Reopened, ports: RoutingPorts) -> None:
    await bring_routing_up_to_date(event, ports)


async def when_command_centre_reassigns_follow_the_order(
    event: Reassigned, ports: RoutingPorts
) -> None:
    await bring_routing_up_to_date(event, ports)


HANDLERS: Mapping[str, Callable[..., Awaitable[None]]] = {
    "reported": when_incident_reported_route_it,
    "returned": when_incident_returned_reroute,
    "escalated": when_escalation_requests_reassignment_move_up,
    "reopened": when_incident_reopened_route_again,
    "reassigned": when_command_centre_reassigns_follow_the_order,
}


async def handle(event: IncidentEvent, ports: RoutingPorts) -> None:
    handler = HANDLERS.get(event.event_type)
    if handler is not None:
        await handler(event, ports)


async def bring_routing_up_to_date(cause: IncidentEvent, ports: RoutingPorts) -> list[Assigned]:
    """Decide and append what the incident is owed through ``cause``; returns what we wrote."""
    started = time.perf_counter()
    for _ in range(MAX_ATTEMPTS):
        history = await ports.store.load(cause.incident_id)
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
        try:
            written = await _append_in_order(plan.assignments, history.version, events, ports)
        except (ConcurrencyConflict, _Superseded):
            ports.metrics.conflicts.inc()
            continue
        ports.metrics.handling.observe(time.perf_counter() - started)
        return written
    raise RoutingContention(f"incident {cause.incident_id} changed {MAX_ATTEMPTS} times")


async def _append_in_order(
    assignments: Sequence[Assigned],
    version: int,
    events: Sequence[IncidentEvent],
    ports: RoutingPorts,
) -> list[Assigned]:
    cause_types = {event.event_id: event.event_type for event in events}
    written: list[Assigned] = []
    for position, assigned in enumerate(assignments):
        result = await ports.store.append(
            assigned, msg_id=msg_id_for(assigned), expected_version=version
        )
        version = result.sequence
        if result.duplicate:
            if position < len(assignments) - 1:
                raise _Superseded()
            continue
        written.append(assigned)
        cause = cause_types.get(assigned.causation_id or "", "unknown")
        ports.metrics.assigned(assigned, cause)
        log.info(
            "assigned",
            cause=cause,
            level=assigned.level.value,
            lead_unit=assigned.lead_unit.id,
            rule=assigned.rule,
            assignment_no=assigned.assignment_no,
            policy_version=assigned.policy_version,
            final_ruling=assigned.final_ruling,
        )
    return written
