"""Returns (退单): routed again without the returning unit, until the command centre rules."""

from __future__ import annotations

import pytest

from civicgrid.events.base import GeoPoint
from civicgrid.events.incident_events import Assigned, HandlingLevel, ReturnReason
from civicgrid.routing.domain import RoutingPolicy
from tests.support.routing import (
    ILLEGAL_PARKING,
    NEIGHBOUR_DISPUTE,
    OVERFLOWING_BINS,
    POLICY_V1,
    STREET_VENDING,
    FakeCity,
    IncidentScript,
    centre_of,
    closed,
    reopened,
    reported_at,
    returned_by,
)

WRONG = ReturnReason.WRONG_JURISDICTION
NOT_OURS = ReturnReason.NOT_OUR_DUTY
# 20 m west of the c01-g002 / c02-g001 border, inside c01-g002.
NEAR_BORDER = GeoPoint(lon=120.5198, lat=27.5025)


def reported_incident(
    point: GeoPoint, category: str = STREET_VENDING, policy: RoutingPolicy | None = None
) -> IncidentScript:
    incident = IncidentScript(FakeCity(), policy or POLICY_V1)
    incident.happen(reported_at(point, category))
    return incident


def return_current(
    incident: IncidentScript, reason: ReturnReason, **fields: object
) -> list[Assigned]:
    return incident.happen(
        returned_by(incident.current.lead_unit, incident.incident_id, reason, **fields)
    )


def test_wrong_jurisdiction_with_a_corrected_location_reruns_the_geo_lookup() -> None:
    incident = reported_incident(centre_of("c01-g001"))
    [again] = return_current(incident, WRONG, corrected_location=centre_of("c02-g001", north=True))
    assert again.lead_unit.id == "c02-g001"
    assert again.rule == "return.wrong_jurisdiction.corrected_location"
    assert again.jurisdiction.micro_grid_id == "c02-g001-m02"
    assert again.assignment_no == 2
    assert "c01-g001 returned assignment 1 (wrong_jurisdiction)" in again.explanation
    assert "非本辖区" in again.explanation


def test_wrong_jurisdiction_without_a_location_goes_to_the_nearest_other_grid_in_reach() -> None:
    incident = reported_incident(NEAR_BORDER)
    assert incident.current.lead_unit.id == "c01-g002"
    [again] = return_current(incident, WRONG)
    assert again.lead_unit.id == "c02-g001"
    assert again.rule == "return.wrong_jurisdiction.nearest_other_grid"
    assert "20 m from the point" in again.explanation


def test_wrong_jurisdiction_deep_inside_a_grid_goes_up_to_its_community() -> None:
    policy = RoutingPolicy(
        policy_version=1, max_returns_before_final_ruling=3, nearest_grid_tolerance_m=100
    )
    incident = reported_incident(centre_of("c01-g002"), policy=policy)
    [again] = return_current(incident, WRONG)
    assert (again.level, again.lead_unit.id) == (HandlingLevel.COMMUNITY, "c01")
    assert again.rule == "return.wrong_jurisdiction.community"


def test_wrong_jurisdiction_from_a_community_goes_to_the_nearest_other_community() -> None:
    incident = reported_incident(NEAR_BORDER, NEIGHBOUR_DISPUTE)
    assert incident.current.lead_unit.id == "c01"
    [again] = return_current(incident, WRONG)
    assert (again.level, again.lead_unit.id) == (HandlingLevel.COMMUNITY, "c02")
    assert again.rule == "return.wrong_jurisdiction.nearest_other_community"


def test_a_corrected_location_inside_the_returning_grid_does_not_send_it_back_there() -> None:
    incident = reported_incident(NEAR_BORDER)
    [again] = return_current(incident, WRONG, corrected_location=centre_of("c01-g002"))
    assert again.lead_unit.id != "c01-g002"
    assert "still in a unit that returned it" in again.explanation


def test_not_our_duty_goes_to_the_next_fallback_unit_then_the_command_centre() -> None:
    incident = reported_incident(centre_of("c01-g001"), ILLEGAL_PARKING)
    assert incident.current.lead_unit.id == "dept-urban-mgmt"
    [second] = return_current(incident, NOT_OURS)
    assert (second.lead_unit.id, second.rule) == (
        "dept-police",
        "return.not_our_duty.fallback_unit",
    )
    [third] = return_current(incident, NOT_OURS)
    assert third.lead_unit.id == "dept-transport"
    assert third.final_ruling is False


def test_not_our_duty_with_no_fallback_left_goes_to_the_command_centre() -> None:
    policy = RoutingPolicy(
        policy_version=1, max_returns_before_final_ruling=5, nearest_grid_tolerance_m=500
    )
    incident = reported_incident(centre_of("c01-g001"), OVERFLOWING_BINS, policy)
    return_current(incident, NOT_OURS)
    assert incident.current.lead_unit.id == "dept-urban-mgmt"
    [last] = return_current(incident, NOT_OURS)
    assert (last.level, last.rule) == (
        HandlingLevel.COMMAND_CENTRE,
        "return.not_our_duty.command_centre",
    )
    assert not last.final_ruling


def test_wrong_jurisdiction_from_a_department_is_treated_as_not_its_duty() -> None:
    incident = reported_incident(centre_of("c01-g001"), ILLEGAL_PARKING)
    [again] = return_current(incident, WRONG)
    assert (again.lead_unit.id, again.rule) == ("dept-police", "return.not_our_duty.fallback_unit")


@pytest.mark.parametrize(
    "reason", [ReturnReason.UNCLEAR_OWNERSHIP, ReturnReason.INSUFFICIENT_INFORMATION]
)
def test_unclear_ownership_and_missing_information_go_to_the_command_centre(
    reason: ReturnReason,
) -> None:
    incident = reported_incident(centre_of("c01-g001"))
    [again] = return_current(incident, reason)
    assert again.level is HandlingLevel.COMMAND_CENTRE
    assert again.rule == f"return.{reason.value}"
    assert not again.final_ruling


def test_another_reason_reroutes_without_the_returning_unit() -> None:
    incident = reported_incident(centre_of("c01-g001"))
    [again] = return_current(incident, ReturnReason.OTHER)
    assert (again.lead_unit.id, again.rule) == ("c01", "return.other.community")
    assert "Skipping c01-g001, which returned it before" in again.explanation


def test_a_corrected_category_routes_by_the_new_matter() -> None:
    incident = reported_incident(centre_of("c01-g001"))
    [again] = return_current(incident, NOT_OURS, corrected_category=ILLEGAL_PARKING)
    assert (again.level, again.lead_unit.id) == (HandlingLevel.DEPARTMENT, "dept-urban-mgmt")
    assert again.rule == "return.corrected_category.lead_unit"


def test_after_the_configured_number_of_returns_the_command_centre_makes_the_final_ruling() -> None:
    incident = reported_incident(centre_of("c01-g001"), ILLEGAL_PARKING)  # at most 3 returns
    return_current(incident, NOT_OURS)
    return_current(incident, NOT_OURS)
    [ruling] = return_current(incident, NOT_OURS)
    assert ruling.level is HandlingLevel.COMMAND_CENTRE
    assert ruling.final_ruling is True
    assert ruling.rule == "return.final_ruling"
    assert ruling.assignment_no == 4
    assert "return 3 of 3" in ruling.explanation


def test_a_return_after_the_final_ruling_is_ignored_every_time() -> None:
    policy = RoutingPolicy(
        policy_version=1, max_returns_before_final_ruling=1, nearest_grid_tolerance_m=500
    )
    incident = reported_incident(centre_of("c01-g001"), policy=policy)
    [ruling] = return_current(incident, NOT_OURS)
    assert ruling.final_ruling
    assert return_current(incident, NOT_OURS) == []
    assert return_current(incident, WRONG) == []
    assert incident.current == ruling


def test_a_stale_return_from_a_unit_that_no_longer_has_it_is_ignored() -> None:
    incident = reported_incident(centre_of("c01-g001"))
    first = incident.current
    return_current(incident, ReturnReason.OTHER)
    stale = incident.happen(returned_by(first.lead_unit, incident.incident_id, NOT_OURS))
    assert stale == []
    assert incident.current.lead_unit.id == "c01"


def test_a_unit_that_returned_it_is_never_chosen_again() -> None:
    incident = reported_incident(NEAR_BORDER)  # c01-g002, 20 m from c02-g001
    return_current(incident, WRONG)  # -> c02-g001
    [third] = return_current(incident, WRONG)  # both grids excluded -> community c01
    assert third.lead_unit.id == "c01"
    assert {"c01-g002", "c02-g001"}.isdisjoint({u.id for u in third.supporting_units})


def test_the_command_centre_is_never_excluded_it_is_the_last_resort() -> None:
    incident = reported_incident(centre_of("c01-g001"))
    return_current(incident, ReturnReason.UNCLEAR_OWNERSHIP)
    [again] = return_current(incident, ReturnReason.UNCLEAR_OWNERSHIP)  # by the centre itself
    assert (again.lead_unit.id, again.rule) == ("command-centre", "return.unclear_ownership")
    incident.happen(closed(incident.incident_id))
    [back] = incident.happen(reopened(incident.incident_id))
    assert (back.lead_unit.id, back.rule) == ("command-centre", "reopen.same_unit")
