"""A new report goes to the level its matter names, at the place it was reported."""

from __future__ import annotations

import pytest

from civicgrid.events.base import UnitKind
from civicgrid.events.incident_events import HandlingLevel, Jurisdiction
from civicgrid.routing.domain import Context, MatterOverride, RoutingPolicy, route_new_report
from tests.support.routing import (
    CROSS_DEPARTMENT,
    ILLEGAL_PARKING,
    NEIGHBOUR_DISPUTE,
    OVERFLOWING_BINS,
    STREET_VENDING,
    FakeCity,
    IncidentScript,
    centre_of,
    metres_east_of_city,
    reported_at,
)


@pytest.fixture
def city() -> FakeCity:
    return FakeCity()


def test_a_grid_matter_goes_to_the_grid_the_point_is_in(city: FakeCity) -> None:
    incident = IncidentScript(city)
    report = reported_at(centre_of("c01-g002", north=True), STREET_VENDING)
    [assigned] = incident.happen(report)

    assert assigned.level is HandlingLevel.GRID
    assert assigned.lead_unit.id == "c01-g002"
    assert assigned.lead_unit.kind is UnitKind.GRID
    assert [u.id for u in assigned.supporting_units] == ["dept-market"]
    assert assigned.jurisdiction == Jurisdiction(
        community_id="c01", grid_id="c01-g002", micro_grid_id="c01-g002-m02"
    )
    assert assigned.rule == "grid.inside"
    assert (assigned.sla_class, assigned.on_site) == ("on_site", True)
    assert (assigned.assignment_no, assigned.policy_version) == (1, 1)
    assert not assigned.final_ruling
    assert assigned.causation_id == report.event_id
    assert assigned.correlation_id == report.correlation_id
    assert "inside micro-grid c01-g002-m02" in assigned.explanation
    assert "派至" in assigned.explanation


def test_a_community_matter_goes_to_the_community_of_the_point(city: FakeCity) -> None:
    [assigned] = IncidentScript(city).happen(reported_at(centre_of("c02-g001"), NEIGHBOUR_DISPUTE))
    assert (assigned.level, assigned.lead_unit.id) == (HandlingLevel.COMMUNITY, "c02")
    assert assigned.rule == "community.inside"
    assert assigned.jurisdiction.grid_id == "c02-g001"


def test_a_department_matter_goes_to_its_lead_department_with_supporting_units(
    city: FakeCity,
) -> None:
    [assigned] = IncidentScript(city).happen(reported_at(centre_of("c01-g001"), ILLEGAL_PARKING))
    assert (assigned.level, assigned.lead_unit.id) == (HandlingLevel.DEPARTMENT, "dept-urban-mgmt")
    assert [u.id for u in assigned.supporting_units] == ["dept-transport"]
    assert assigned.rule == "department.matter_list"
    assert assigned.jurisdiction.community_id == "c01", "kept for per-community statistics"


def test_a_transferred_matter_goes_to_the_social_organisation(city: FakeCity) -> None:
    [assigned] = IncidentScript(city).happen(reported_at(centre_of("c01-g001"), OVERFLOWING_BINS))
    assert assigned.level is HandlingLevel.SOCIAL_ORG
    assert assigned.lead_unit.id == "ent-sanitation"
    assert assigned.lead_unit.kind is UnitKind.ENTERPRISE
    assert assigned.rule == "social_org.transferred_matter"


def test_a_command_centre_matter_goes_to_the_command_centre(city: FakeCity) -> None:
    [assigned] = IncidentScript(city).happen(reported_at(centre_of("c01-g001"), CROSS_DEPARTMENT))
    assert (assigned.level, assigned.lead_unit.id) == (
        HandlingLevel.COMMAND_CENTRE,
        "command-centre",
    )
    assert assigned.rule == "command_centre.matter_list"
    assert assigned.sla_class == "difficult"


def test_a_point_just_outside_goes_to_the_nearest_grid_within_the_tolerance(
    city: FakeCity,
) -> None:
    [assigned] = IncidentScript(city).happen(reported_at(metres_east_of_city(120)))
    assert assigned.lead_unit.id == "c02-g001"
    assert assigned.rule == "grid.nearest"
    assert "120 m away, within the 500 m tolerance" in assigned.explanation


def test_a_point_beyond_the_tolerance_goes_to_the_command_centre_with_that_reason(
    city: FakeCity,
) -> None:
    [assigned] = IncidentScript(city).happen(reported_at(metres_east_of_city(800)))
    assert assigned.level is HandlingLevel.COMMAND_CENTRE
    assert assigned.rule == "command_centre.outside_city"
    assert "800 m from the nearest (grid c02-g001), beyond the 500 m tolerance" in (
        assigned.explanation
    )
    assert assigned.jurisdiction == Jurisdiction()


def test_the_tolerance_comes_from_the_policy_version(city: FakeCity) -> None:
    wide = RoutingPolicy(
        policy_version=2, max_returns_before_final_ruling=3, nearest_grid_tolerance_m=1000
    )
    decision = route_new_report(Context(city, wide), STREET_VENDING, metres_east_of_city(800))
    assert (decision.rule, decision.lead.id) == ("grid.nearest", "c02-g001")


def test_an_unknown_category_goes_to_the_command_centre(city: FakeCity) -> None:
    [assigned] = IncidentScript(city).happen(reported_at(centre_of("c01-g001"), "no-such.category"))
    assert assigned.rule == "command_centre.unknown_category"
    assert assigned.sla_class == "standard"
    assert assigned.jurisdiction.grid_id == "c01-g001"


def test_a_matter_override_in_the_policy_moves_the_matter_to_another_level(
    city: FakeCity,
) -> None:
    policy = RoutingPolicy(
        policy_version=2,
        max_returns_before_final_ruling=3,
        nearest_grid_tolerance_m=500,
        matter_overrides={
            STREET_VENDING: MatterOverride(handling_level="department", lead_unit="dept-market")
        },
    )
    [assigned] = IncidentScript(city, policy).happen(reported_at(centre_of("c01-g001")))
    assert (assigned.level, assigned.lead_unit.id) == (HandlingLevel.DEPARTMENT, "dept-market")
    assert assigned.policy_version == 2


def test_a_second_report_trigger_does_not_assign_again(city: FakeCity) -> None:
    incident = IncidentScript(city)
    report = reported_at(centre_of("c01-g001"))
    incident.happen(report)
    again = incident.happen(report.model_copy(update={"event_id": "another-id"}))
    assert again == []
    assert len(incident.assignments) == 1


def test_a_lead_unit_missing_from_the_city_goes_to_the_command_centre(city: FakeCity) -> None:
    policy = RoutingPolicy(
        policy_version=2,
        max_returns_before_final_ruling=3,
        nearest_grid_tolerance_m=500,
        matter_overrides={ILLEGAL_PARKING: MatterOverride(lead_unit="dept-ghost")},
    )
    decision = route_new_report(Context(city, policy), ILLEGAL_PARKING, centre_of("c01-g001"))
    assert (decision.lead.id, decision.rule) == ("command-centre", "command_centre.unknown_unit")
    assert "'dept-ghost' is not in the city configuration" in decision.explanation
