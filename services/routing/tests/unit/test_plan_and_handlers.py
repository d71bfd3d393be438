"""Routing as a function of the ordered history, and the handlers' write-once discipline."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from civicgrid.events.incident_events import Assigned, ReturnReason
from civicgrid.routing.domain import RoutingPolicy, plan_routing
from civicgrid.routing.handlers import (
    RoutingPorts,
    bring_routing_up_to_date,
    cause_of,
    handle,
)
from civicgrid.routing.metrics import RoutingMetrics
from tests.support.events.memory_store import InMemoryStore
from tests.support.routing import (
    POLICY_V1,
    FakeCity,
    IncidentScript,
    centre_of,
    reported_at,
    returned_by,
    whistle,
)


class FixedPolicies:
    def __init__(self, *policies: RoutingPolicy) -> None:
        self.by_version = {p.policy_version: p for p in policies}
        self.current_version = max(self.by_version)

    async def current(self) -> RoutingPolicy:
        return self.by_version[self.current_version]

    async def version(self, number: int) -> RoutingPolicy:
        return self.by_version[number]


def ports_with(
    store: InMemoryStore,
    policies: FixedPolicies | None = None,
    registry: CollectorRegistry | None = None,
) -> RoutingPorts:
    return RoutingPorts(
        store=store,
        city=FakeCity(),
        policies=policies or FixedPolicies(POLICY_V1),
        metrics=RoutingMetrics.create(registry or CollectorRegistry()),
    )


def assignments_in(store: InMemoryStore) -> list[Assigned]:
    return [s.event for _, s in store.stored if isinstance(s.event, Assigned)]


def test_handling_a_later_trigger_first_also_decides_the_earlier_one_in_order() -> None:
    city = FakeCity()
    in_order = IncidentScript(city)
    report = reported_at(centre_of("c01-g001"))
    in_order.happen(report)
    blown = whistle(report.incident_id)
    in_order.happen(blown)

    # The whistle is handled before the report's own handler ran (another replica, a backlog).
    plan = plan_routing([report, blown], blown.event_id, city, POLICY_V1)
    assert [a.causation_id for a in plan.assignments] == [report.event_id, blown.event_id]
    assert [(a.lead_unit.id, a.rule) for a in plan.assignments] == [
        (a.lead_unit.id, a.rule) for a in in_order.assignments
    ]


def test_a_trigger_settled_by_a_later_assignment_is_not_decided_again() -> None:
    city = FakeCity()
    incident = IncidentScript(city)
    report = reported_at(centre_of("c01-g001"))
    incident.happen(report)
    # An escalation that once asked for nothing, then a return that was routed.
    quiet = whistle(report.incident_id, request_reassignment=False)
    incident.happen(quiet)
    incident.happen(returned_by(incident.current.lead_unit, report.incident_id, ReturnReason.OTHER))
    replay = plan_routing(incident.events, quiet.event_id, city, POLICY_V1)
    assert replay.assignments == []
    assert replay.cause_found


async def test_the_handler_appends_with_the_causing_event_as_message_id_and_causation() -> None:
    store = InMemoryStore()
    report = reported_at(centre_of("c01-g001"))
    store.add(report)
    await handle(report, ports_with(store))

    [assigned] = assignments_in(store)
    assert assigned.causation_id == report.event_id
    assert cause_of(report).key == f"routing:{report.event_id}"
    assert store.stored[-1][0] == f"routing:{report.event_id}:{report.incident_id}:0"


async def test_a_redelivered_trigger_writes_nothing_new() -> None:
    store = InMemoryStore()
    report = reported_at(centre_of("c01-g001"))
    store.add(report)
    ports = ports_with(store)
    await handle(report, ports)
    await handle(report, ports)
    assert len(assignments_in(store)) == 1


async def test_a_conflicting_write_is_decided_again_on_the_new_history() -> None:
    store = InMemoryStore()
    report = reported_at(centre_of("c01-g001"))
    store.add(report)
    registry = CollectorRegistry()
    ports = ports_with(store, registry=registry)
    await handle(report, ports)
    first = assignments_in(store)[0]
    returned = returned_by(first.lead_unit, report.incident_id, ReturnReason.OTHER)
    store.add(returned)
    # While we decide the return, the SLA service's whistle lands first.
    blown = whistle(report.incident_id)
    store.before_append.append(blown)

    await handle(returned, ports)
    await handle(blown, ports)

    assignments = assignments_in(store)
    assert [a.causation_id for a in assignments] == [
        report.event_id,
        returned.event_id,
        blown.event_id,
    ]
    assert [a.assignment_no for a in assignments] == [1, 2, 3]
    assert registry.get_sample_value("civicgrid_routing_conflicts_total") == 1


async def test_an_incident_keeps_the_policy_version_of_its_first_assignment() -> None:
    store = InMemoryStore()
    strict = RoutingPolicy(
        policy_version=2, max_returns_before_final_ruling=1, nearest_grid_tolerance_m=500
    )
    policies = FixedPolicies(POLICY_V1)
    ports = ports_with(store, policies)
    report = reported_at(centre_of("c01-g001"))
    store.add(report)
    await handle(report, ports)
    policies.by_version[2] = strict
    policies.current_version = 2  # published while the first incident is in flight

    returned = returned_by(
        assignments_in(store)[0].lead_unit, report.incident_id, ReturnReason.NOT_OUR_DUTY
    )
    store.add(returned)
    await handle(returned, ports)
    newer = reported_at(centre_of("c01-g001"))
    store.add(newer)
    await handle(newer, ports)

    again = assignments_in(store)[1]
    assert (again.policy_version, again.final_ruling) == (1, False)
    assert assignments_in(store)[2].policy_version == 2


async def test_the_handler_refuses_to_decide_on_an_event_it_cannot_find_in_the_history() -> None:
    store = InMemoryStore()
    report = reported_at(centre_of("c01-g001"))
    with pytest.raises(Exception, match="not in the history"):
        await bring_routing_up_to_date(report, ports_with(store))
    assert assignments_in(store) == []
