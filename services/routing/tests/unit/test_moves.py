"""The whistle, reopened incidents and the command centre's orders."""

from __future__ import annotations

from civicgrid.events.base import UnitKind, UnitRef
from civicgrid.events.incident_events import HandlingLevel, ReturnReason
from civicgrid.routing.domain import RoutingPolicy
from tests.support.routing import (
    CROSS_DEPARTMENT,
    ILLEGAL_PARKING,
    NEIGHBOUR_DISPUTE,
    STREET_VENDING,
    FakeCity,
    IncidentScript,
    centre_of,
    closed,
    reassigned,
    reopened,
    reported_at,
    returned_by,
    whistle,
)


def incident_of(category: str = STREET_VENDING, city: FakeCity | None = None) -> IncidentScript:
    incident = IncidentScript(city or FakeCity())
    incident.happen(reported_at(centre_of("c01-g002"), category))
    return incident


def test_the_whistle_moves_a_grid_incident_up_to_its_community_keeping_the_grid() -> None:
    incident = incident_of()
    [up] = incident.happen(whistle(incident.incident_id))
    assert (up.level, up.lead_unit.id) == (HandlingLevel.COMMUNITY, "c01")
    assert up.rule == "whistle.to_community"
    assert up.assignment_no == 2
    assert "c01-g002" in [unit.id for unit in up.supporting_units]
    assert up.jurisdiction == incident.assignments[0].jurisdiction
    assert "blew the whistle: resolve deadline breached by 2 h" in up.explanation
    assert len(incident.assignments) == 2, "the first assignment stays in the history"


def test_the_whistle_climbs_grid_community_department_command_centre() -> None:
    incident = incident_of()
    levels = []
    for _ in range(3):
        [up] = incident.happen(whistle(incident.incident_id))
        levels.append((up.level, up.lead_unit.id, up.rule))
    assert levels == [
        (HandlingLevel.COMMUNITY, "c01", "whistle.to_community"),
        (HandlingLevel.DEPARTMENT, "dept-urban-mgmt", "whistle.to_department"),
        (HandlingLevel.COMMAND_CENTRE, "command-centre", "whistle.to_command_centre"),
    ]
    assert incident.happen(whistle(incident.incident_id)) == [], "nothing above the centre"
    assert [a.assignment_no for a in incident.assignments] == [1, 2, 3, 4]


def test_a_communitys_whistle_is_answered_by_the_unit_the_matter_list_names() -> None:
    incident = incident_of(NEIGHBOUR_DISPUTE)
    [up] = incident.happen(whistle(incident.incident_id))
    assert (up.level, up.lead_unit.id) == (HandlingLevel.SOCIAL_ORG, "soc-mediation")
    assert up.rule == "whistle.to_social_org"


def test_an_escalation_without_the_whistle_changes_nothing() -> None:
    incident = incident_of()
    assert incident.happen(whistle(incident.incident_id, request_reassignment=False)) == []
    assert len(incident.assignments) == 1


def test_the_whistle_skips_a_unit_that_returned_the_incident() -> None:
    incident = incident_of()
    incident.happen(
        returned_by(incident.current.lead_unit, incident.incident_id, ReturnReason.OTHER)
    )
    assert incident.current.lead_unit.id == "c01"
    [up] = incident.happen(whistle(incident.incident_id))
    assert up.lead_unit.id == "dept-urban-mgmt"


def test_a_reopened_incident_goes_back_to_the_unit_that_had_it() -> None:
    incident = incident_of(ILLEGAL_PARKING)
    first = incident.current
    incident.happen(closed(incident.incident_id))
    [again] = incident.happen(reopened(incident.incident_id))
    assert again.lead_unit == first.lead_unit
    assert again.supporting_units == first.supporting_units
    assert again.rule == "reopen.same_unit"
    assert again.assignment_no == 2


def test_a_reopened_incident_whose_unit_is_gone_is_routed_again() -> None:
    city = FakeCity()
    incident = incident_of(ILLEGAL_PARKING, city)
    incident.happen(closed(incident.incident_id))
    del city.units["dept-urban-mgmt"]
    [again] = incident.happen(reopened(incident.incident_id))
    assert again.lead_unit.id == "dept-police"
    assert again.rule == "reopen.reroute.fallback_unit"
    assert "no longer in the city configuration" in again.explanation


def test_the_whistle_and_orders_are_ignored_on_a_closed_incident() -> None:
    incident = incident_of()
    incident.happen(closed(incident.incident_id))
    assert incident.happen(whistle(incident.incident_id)) == []
    assert incident.happen(reassigned(incident.incident_id)) == []


def test_an_order_to_a_named_unit_is_followed_even_if_it_returned_it() -> None:
    incident = incident_of()
    grid = incident.current.lead_unit
    incident.happen(returned_by(grid, incident.incident_id, ReturnReason.OTHER))
    [order] = incident.happen(reassigned(incident.incident_id, to_unit=grid))
    assert (order.lead_unit.id, order.rule) == ("c01-g002", "reassigned.to_unit")
    assert order.jurisdiction.grid_id == "c01-g002"


def test_an_order_to_a_level_finds_the_unit_of_that_level() -> None:
    incident = incident_of()
    [order] = incident.happen(reassigned(incident.incident_id, to_level=HandlingLevel.DEPARTMENT))
    assert (order.level, order.lead_unit.id) == (HandlingLevel.DEPARTMENT, "dept-urban-mgmt")
    assert order.rule == "reassigned.to_level"


def test_an_order_without_a_target_routes_again_without_the_units_that_returned_it() -> None:
    incident = incident_of()
    incident.happen(
        returned_by(incident.current.lead_unit, incident.incident_id, ReturnReason.OTHER)
    )
    [order] = incident.happen(reassigned(incident.incident_id))
    assert (order.lead_unit.id, order.rule) == ("c01", "reassigned.reroute.community")
    assert "Skipping c01-g002" in order.explanation


def test_an_order_to_reroute_a_command_centre_matter_keeps_it_there() -> None:
    incident = incident_of(CROSS_DEPARTMENT)
    [order] = incident.happen(reassigned(incident.incident_id))
    assert (order.level, order.rule) == (
        HandlingLevel.COMMAND_CENTRE,
        "reassigned.reroute.command_centre",
    )


def test_an_order_to_an_unknown_unit_goes_back_to_the_command_centre() -> None:
    incident = incident_of()
    ghost = UnitRef(kind=UnitKind.DEPARTMENT, id="dept-ghost")
    [order] = incident.happen(reassigned(incident.incident_id, to_unit=ghost))
    assert (order.lead_unit.id, order.rule) == ("command-centre", "reassigned.unknown_unit")


def test_the_command_centres_order_after_a_final_ruling_stays_final() -> None:
    strict = RoutingPolicy(
        policy_version=1, max_returns_before_final_ruling=1, nearest_grid_tolerance_m=500
    )
    incident = IncidentScript(FakeCity(), strict)
    incident.happen(reported_at(centre_of("c01-g001")))
    incident.happen(
        returned_by(incident.current.lead_unit, incident.incident_id, ReturnReason.NOT_OUR_DUTY)
    )
    assert incident.current.final_ruling
    grid = UnitRef(kind=UnitKind.GRID, id="c01-g001")
    [ruled] = incident.happen(reassigned(incident.incident_id, to_unit=grid))
    assert ruled.final_ruling, "the unit the command centre ruled for cannot return it"
    refused = incident.happen(
        returned_by(ruled.lead_unit, incident.incident_id, ReturnReason.NOT_OUR_DUTY)
    )
    assert refused == []
