"""并单 as a pure rule: same category, open, within the radius and the window (inclusive)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civicgrid.events.base import GeoPoint
from civicgrid.intake.domain.duplicates import DuplicateRule, best_match, distance_m, match
from civicgrid.intake.domain.state import fold
from tests.support.events.factories import reported
from tests.support.intake import north_of

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
RULE = DuplicateRule(radius_m=100, window_minutes=60)
CATEGORY = "city-appearance.illegal-parking"  # the factory's category


def open_incident(incident_id: str, lon: float = 120.55, lat: float = 27.55):  # type: ignore[no-untyped-def]
    event = reported(incident_id, occurred_at=T0)
    report = event.report.model_copy(update={"location": GeoPoint(lon=lon, lat=lat)})
    return fold(incident_id, [event.model_copy(update={"report": report})])


def test_distance_is_metres_on_the_ground() -> None:
    lon, lat = north_of(120.55, 27.55, 250)
    assert abs(distance_m(GeoPoint(lon=120.55, lat=27.55), GeoPoint(lon=lon, lat=lat)) - 250) < 0.5


def test_within_radius_and_window_matches_and_just_outside_does_not() -> None:
    incident = open_incident("A")
    near = GeoPoint(lon=120.55, lat=north_of(120.55, 27.55, 99)[1])
    far = GeoPoint(lon=120.55, lat=north_of(120.55, 27.55, 101)[1])
    assert match(incident, CATEGORY, near, T0 + timedelta(minutes=60), RULE) is not None
    assert match(incident, CATEGORY, far, T0, RULE) is None
    assert match(incident, CATEGORY, near, T0 + timedelta(minutes=61), RULE) is None
    assert match(incident, "other.category", near, T0, RULE) is None


def test_a_rule_of_zero_never_merges() -> None:
    at = GeoPoint(lon=120.55, lat=27.55)
    assert match(open_incident("A"), CATEGORY, at, T0, DuplicateRule(0, 0)) is None


def test_the_nearest_candidate_wins() -> None:
    lon, lat_far = north_of(120.55, 27.55, 80)
    _, lat_near = north_of(120.55, 27.55, 20)
    candidates = [open_incident("FAR", lon, lat_far), open_incident("NEAR", lon, lat_near)]
    found = best_match(candidates, CATEGORY, GeoPoint(lon=120.55, lat=27.55), T0, RULE)
    assert found is not None and found.incident_id == "NEAR"
