"""The shipped city (config/longgang) has the reference city's shape and a usable catalogue."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from civicgrid.city import City

BRIEFED_GROUPS = {
    "city-appearance",
    "roads",
    "environment",
    "safety",
    "markets",
    "water",
    "neighbourhood",
    "public-services",
}


def test_the_shipped_city_has_26_communities_484_grids_and_3311_micro_grids(city: City) -> None:
    assert len(city.communities) == 26
    assert len(city.grids) == 484
    assert sum(g.grid_type == "full" for g in city.grids) == 469
    assert sum(g.grid_type == "exclusive" for g in city.grids) == 15
    assert len(city.micro_grids) == 3311


def test_exclusive_grids_are_parks_schools_hospitals_and_markets(city: City) -> None:
    kinds = {g.exclusive_kind for g in city.grids if g.grid_type == "exclusive"}
    assert kinds == {"industrial_park", "school", "hospital", "market"}
    assert all(g.exclusive_kind is None for g in city.grids if g.grid_type == "full")


def test_area_ids_are_readable_and_follow_the_nesting(city: City) -> None:
    assert all(re.fullmatch(r"c\d\d", c.id) for c in city.communities)
    assert all(re.fullmatch(rf"{g.community_id}-g\d{{3}}", g.id) for g in city.grids)
    assert all(re.fullmatch(rf"{m.grid_id}-m\d\d", m.id) for m in city.micro_grids)
    assert all(m.community_id == city.grid(m.grid_id).community_id for m in city.micro_grids)


def test_every_community_and_grid_has_children_and_names(city: City) -> None:
    assert all(city.grids_in(c.id) for c in city.communities)
    assert all(city.micro_grids_in(g.id) for g in city.grids)
    assert city.community("c01").name.endswith("社区")
    assert all(g.name.endswith("网格") for g in city.grids)


def test_the_coordinates_are_declared_as_wgs84(city: City) -> None:
    assert city.coordinate_system == "WGS84"


def test_there_are_15_departments_one_command_centre_and_social_organisations(
    city: City,
) -> None:
    kinds = [u.kind for u in city.units]
    assert kinds.count("department") == 15
    assert kinds.count("command_centre") == 1
    assert city.command_centre.id == "command-centre"
    assert {"social_org", "enterprise", "university"} <= set(kinds)
    assert all(u.matters for u in city.units if u.is_social)
    assert {"dept-urban-mgmt", "dept-police", "dept-petitions"} <= set(city.units_by_id)


def test_communities_and_grids_are_units_too(city: City) -> None:
    assert city.units_by_id["c01"].kind == "community"
    assert city.units_by_id["c01-g001"].kind == "grid"
    assert "c01-g001-m01" not in city.units_by_id
    assert len(city.units_by_id) == len(city.units) + 26 + 484


def test_the_matter_list_has_at_least_60_matters_across_the_briefed_groups(city: City) -> None:
    assert len(city.matters) >= 60
    assert {m.group for m in city.matters} >= BRIEFED_GROUPS
    assert set(city.matters_by_code) == {m.code for m in city.matters}


def test_every_handling_level_is_used(city: City) -> None:
    levels = {m.handling_level for m in city.matters}
    assert levels == {"grid", "community", "department", "social_org", "command_centre"}


def test_social_org_matters_are_led_by_a_unit_they_were_transferred_to(city: City) -> None:
    social = [m for m in city.matters if m.handling_level == "social_org"]
    assert len(social) >= 15
    for matter in social:
        assert matter.lead_unit is not None
        lead = city.units_by_id[matter.lead_unit]
        assert lead.is_social
        assert matter.code in lead.matters


def test_some_matters_carry_open311_attributes(city: City) -> None:
    with_attributes = [m for m in city.matters if m.attributes]
    assert len(with_attributes) >= 3
    lists = [a for m in with_attributes for a in m.attributes if a.datatype == "singlevaluelist"]
    assert lists
    assert all(a.values for a in lists)


def test_the_sla_classes_match_the_design(city: City) -> None:
    standard = city.sla.sla_class("standard")
    on_site = city.sla.sla_class("on_site")
    difficult = city.sla.sla_class("difficult")
    assert standard.accept.as_timedelta() == timedelta(minutes=30)
    assert standard.resolve.as_timedelta() == timedelta(hours=24)
    assert standard.arrive is None
    assert on_site.arrive is not None
    assert on_site.arrive.as_timedelta() == timedelta(hours=1)
    assert difficult.resolve.working_days == 5
    assert city.sla.warning_ratio == 0.8


def test_the_escalation_ladder_climbs_to_city_leadership_and_reassigns_early(city: City) -> None:
    ladder = city.sla.escalation
    assert [level.id for level in ladder] == [
        "community-head",
        "department-head",
        "command-centre",
        "leadership-supervision",
    ]
    assert [level.reassign for level in ladder] == [True, True, False, False]
    minutes = [level.after.minutes for level in ladder]
    assert minutes == sorted(m for m in minutes if m is not None)


def test_on_site_matters_have_an_arrival_deadline(city: City) -> None:
    for matter in city.matters:
        has_arrive = city.sla.sla_class(matter.sla_class).arrive is not None
        assert matter.on_site == has_arrive, matter.code


def test_calendar_and_routing_settings_load(city: City) -> None:
    assert city.calendar.timezone == "Asia/Shanghai"
    assert city.calendar.holiday_source == "chinese-calendar"
    assert city.calendar.zone.key == "Asia/Shanghai"
    assert city.routing.policy_version == 1
    assert city.routing.max_returns_before_final_ruling == 3
    assert city.routing.nearest_grid_tolerance_m == 500


def test_bounds_frame_the_city_and_contains_knows_inside_from_outside(city: City) -> None:
    min_lon, min_lat, max_lon, max_lat = city.bounds
    assert 120.4 < min_lon < max_lon < 120.8
    assert 27.4 < min_lat < max_lat < 27.7
    inside = city.micro_grid("c01-g001-m01").geometry.representative_point()
    assert city.contains(inside.x, inside.y)
    assert not city.contains(121.5, 28.5)


def test_looking_up_an_area_of_the_wrong_kind_names_the_kind_asked_for(city: City) -> None:
    with pytest.raises(KeyError, match="no grid 'c01-g001-m01'"):
        city.grid("c01-g001-m01")
    with pytest.raises(KeyError, match="no community 'c01-g001'"):
        city.community("c01-g001")
    with pytest.raises(KeyError, match="no community, grid or micro-grid 'x'"):
        city.area("x")
