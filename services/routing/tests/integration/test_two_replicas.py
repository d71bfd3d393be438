"""Two routing replicas on one durable consumer: each decision is written exactly once."""

from __future__ import annotations

import asyncio
import random

from civicgrid.events.incident_events import Escalated, Reported
from civicgrid.servicekit.service import Service
from tests.support.events.waiting import eventually
from tests.support.routing import Incidents, StartRouting, whistle

INCIDENTS = 150


def assignments_written(service: Service) -> float:
    total = 0.0
    for metric in service.registry.collect():
        if metric.name == "civicgrid_routing_assignments":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


async def test_two_replicas_write_one_assignment_per_decision_under_any_interleaving(
    start_routing: StartRouting, incidents: Incidents
) -> None:
    first, second = await start_routing(), await start_routing()
    category = incidents.matter_at("grid")
    grids = [grid.id for grid in incidents.city.city.grids]
    rng = random.Random(7)

    async def report_and_blow(n: int) -> tuple[Reported, Escalated]:
        report = await incidents.report(category, incidents.point_in(rng.choice(grids)))
        # The SLA service's whistle right behind it: the two replicas race on one incident.
        blown = whistle(report.incident_id)
        await incidents.append(blown)
        return report, blown

    published = await asyncio.gather(*(report_and_blow(n) for n in range(INCIDENTS)))

    async def all_routed() -> bool:
        counts = await asyncio.gather(
            *(incidents.assignments(report.incident_id) for report, _ in published)
        )
        return all(len(found) >= 2 for found in counts)

    await eventually(all_routed, within_s=30, what="every incident routed twice")
    for report, blown in published:
        assignments = await incidents.assignments(report.incident_id)
        assert [a.causation_id for a in assignments] == [report.event_id, blown.event_id]
        assert [a.assignment_no for a in assignments] == [1, 2]
        assert [a.rule for a in assignments] == ["grid.inside", "whistle.to_community"]
        assert assignments[1].lead_unit.id == assignments[0].jurisdiction.community_id
    by_replica = (assignments_written(first), assignments_written(second))
    assert sum(by_replica) == 2 * INCIDENTS, by_replica
    assert min(by_replica) > 0, f"both replicas should have routed some: {by_replica}"
