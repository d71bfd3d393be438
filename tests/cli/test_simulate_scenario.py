"""The simulated day's plan: repeatable from its seed, inside the city, in the real mix."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from civicgrid.city import GeoIndex, default_config_dir, load_city
from civicgrid.cli.simulate.scenario import CHANNEL_WEIGHTS, DAY_S, Scenario


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario(load_city(default_config_dir()), seed=11)


def test_the_same_seed_plans_the_same_day_and_another_seed_another(scenario: Scenario) -> None:
    again = Scenario(scenario.city, seed=11)
    other = Scenario(scenario.city, seed=12)
    day = scenario.reports(1000, DAY_S)
    assert day == again.reports(1000, DAY_S)
    assert day != other.reports(1000, DAY_S)
    assert scenario.handling(5, 1, day[5].matter, True) == again.handling(5, 1, day[5].matter, True)


def test_a_day_has_every_channel_about_the_rate_and_points_in_their_grids(
    scenario: Scenario,
) -> None:
    day = scenario.reports(1000, DAY_S)
    assert 850 <= len(day) <= 1150
    assert set(Counter(r.channel for r in day)) == set(CHANNEL_WEIGHTS)
    index = GeoIndex(scenario.city)
    fresh = [r for r in day if r.duplicate_of is None]
    for report in fresh[:200]:
        located = index.locate(report.lon, report.lat)
        assert located is not None and located.grid_id == report.grid_id


def test_near_duplicates_repeat_a_mergeable_report_within_its_radius(scenario: Scenario) -> None:
    day = scenario.reports(1000, DAY_S)
    repeats = [r for r in day if r.duplicate_of is not None]
    assert repeats
    for repeat in repeats:
        original = day[repeat.duplicate_of]  # type: ignore[index]
        assert repeat.matter == original.matter
        radius = scenario.matters[repeat.matter].duplicate_radius_m
        dy = (repeat.lat - original.lat) * 111_320
        dx = (repeat.lon - original.lon) * 111_320 * math.cos(math.radians(original.lat))
        assert math.hypot(dx, dy) <= radius


def test_handlers_sometimes_return_sign_late_and_citizens_sometimes_are_unhappy(
    scenario: Scenario,
) -> None:
    matter = "city-appearance.illegal-parking"
    due = scenario.deadlines(matter)
    plans = [scenario.handling(i, 1, matter, True) for i in range(400)]
    commands = Counter(step.command for plan in plans for step in plan)
    assert commands["return"] > 0 and commands["suspend"] > 0
    late = [p for p in plans if p[0].command == "accept" and p[0].after_s > due.accept_s]
    assert late
    unhappy = [s for p in plans for s in p if s.command == "callback" and not s.detail["satisfied"]]
    assert unhappy
