"""The routing service end to end: events in the INCIDENTS stream in, assignments out."""

from __future__ import annotations

import httpx

from civicgrid.events.base import IncidentEvent
from civicgrid.events.decide import Cause, decide_and_append
from civicgrid.events.incident_events import HandlingLevel, ReturnReason
from tests.support.routing import (
    Incidents,
    StartRouting,
    reopened,
    reported_at,
    returned_by,
    whistle,
)


async def test_a_reported_incident_is_assigned_to_the_grid_it_is_in(
    start_routing: StartRouting, incidents: Incidents
) -> None:
    service = await start_routing()
    category = incidents.matter_at("grid")
    report = await incidents.report(category, incidents.point_in("c03-g002"))

    [assigned] = await incidents.wait_for(report.incident_id, 1)
    assert (assigned.level, assigned.lead_unit.id) == (HandlingLevel.GRID, "c03-g002")
    assert assigned.jurisdiction.community_id == "c03"
    assert (assigned.jurisdiction.micro_grid_id or "").startswith("c03-g002-m")
    assert assigned.rule == "grid.inside"
    assert assigned.policy_version == 1
    assert assigned.causation_id == report.event_id
    assert assigned.correlation_id == report.correlation_id
    assert assigned.source == "routing"

    transport = httpx.ASGITransport(app=service.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as client:
        metrics = (await client.get("/metrics")).text
    assert (
        'civicgrid_routing_assignments_total{cause="reported",final_ruling="false",'
        'level="grid",rule="grid.inside"} 1.0'
    ) in metrics
    assert "civicgrid_routing_policy_version 1.0" in metrics
    routing_lines = [line for line in metrics.splitlines() if "civicgrid_routing" in line]
    assert routing_lines and not [line for line in routing_lines if report.incident_id in line]


async def test_returns_end_in_the_command_centres_final_ruling_which_cannot_be_returned(
    start_routing: StartRouting, incidents: Incidents
) -> None:
    await start_routing()
    category = incidents.matter_at("department")
    report = await incidents.report(category, incidents.point_in("c01-g001"))
    incident_id = report.incident_id
    [current] = await incidents.wait_for(incident_id, 1)
    for n in range(2, 5):  # routing.yaml: 3 returns before the final ruling
        await incidents.append(
            returned_by(current.lead_unit, incident_id, ReturnReason.NOT_OUR_DUTY)
        )
        current = (await incidents.wait_for(incident_id, n))[-1]
    assert current.final_ruling
    assert (current.level, current.rule) == (HandlingLevel.COMMAND_CENTRE, "return.final_ruling")

    refused = returned_by(current.lead_unit, incident_id, ReturnReason.NOT_OUR_DUTY)
    await incidents.append(refused)
    # Events of one incident are handled in order: once the reopen is routed, the return was seen.
    await incidents.append(reopened(incident_id))
    assignments = await incidents.wait_for(incident_id, 5)
    assert refused.event_id not in {a.causation_id for a in assignments}
    assert assignments[-1].rule == "reopen.same_unit"
    assert assignments[-1].final_ruling
    assert [a.assignment_no for a in assignments] == [1, 2, 3, 4, 5]


async def test_the_whistle_moves_the_incident_up_a_level(
    start_routing: StartRouting, incidents: Incidents
) -> None:
    await start_routing()
    report = await incidents.report(incidents.matter_at("grid"), incidents.point_in("c02-g003"))
    await incidents.wait_for(report.incident_id, 1)
    await incidents.append(whistle(report.incident_id))
    first, up = await incidents.wait_for(report.incident_id, 2)
    assert (up.level, up.lead_unit.id, up.rule) == (
        HandlingLevel.COMMUNITY,
        "c02",
        "whistle.to_community",
    )
    assert first.lead_unit in up.supporting_units
    assert up.assignment_no == 2


async def test_explain_gives_the_answer_the_consumer_writes(
    start_routing: StartRouting, incidents: Incidents
) -> None:
    service = await start_routing()
    category = incidents.matter_at("community")
    point = incidents.point_in("c07-g004")
    report = await incidents.report(category, point)
    [assigned] = await incidents.wait_for(report.incident_id, 1)

    transport = httpx.ASGITransport(app=service.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as client:
        response = await client.get(
            "/api/v1/explain", params={"lon": point.lon, "lat": point.lat, "category": category}
        )
    assert response.status_code == 200
    explained = response.json()
    assert explained["lead_unit"]["id"] == assigned.lead_unit.id == "c07"
    assert explained["rule"] == assigned.rule
    assert explained["jurisdiction"] == assigned.jurisdiction.model_dump()
    assert explained["explanation"] == assigned.explanation
    assert explained["policy_version"] == assigned.policy_version


async def test_a_new_incident_is_routed_without_reading_its_history(
    start_routing: StartRouting, incidents: Incidents
) -> None:
    """Its `reported`, delivered, is its whole history (the store's expectation says nothing
    came before); a return, right after routing's own assignment, extends what it holds."""
    service = await start_routing()
    report = reported_at(incidents.point_in("c03-g002"), incidents.matter_at("grid"))
    incident_id = report.incident_id
    await as_a_service_writes(incidents, report)
    [first] = await incidents.wait_for(incident_id, 1)
    await as_a_service_writes(
        incidents, returned_by(first.lead_unit, incident_id, ReturnReason.NOT_OUR_DUTY)
    )
    await incidents.wait_for(incident_id, 2)

    def reads(outcome: str) -> float | None:
        labels = {"service": "routing", "outcome": outcome}
        return service.registry.get_sample_value("civicgrid_history_reads_total", labels)

    assert (reads("hit"), reads("miss")) == (2, 0)


async def as_a_service_writes(incidents: Incidents, event: IncidentEvent) -> None:
    """Expecting the incident's last event, as intake and routing decide (the tests' other
    events are appended unconditionally, like an independent writer)."""
    await decide_and_append(incidents.store, event.incident_id,
                            Cause(f"test:{event.event_id}"), lambda _history: [event])  # fmt: skip
