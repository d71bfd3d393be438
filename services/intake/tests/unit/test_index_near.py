"""The index finds a report's duplicates among the open incidents its radius reaches, not
among every open incident of its matter, and misses none (antimeridian included)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from civicgrid.events.base import GeoPoint
from civicgrid.events.incident_events import Closed
from civicgrid.events.store import StoredEvent
from civicgrid.intake.domain.duplicates import distance_m
from civicgrid.intake.index import IncidentIndex
from tests.support.events.factories import reported

CATEGORY = "city-appearance.illegal-parking"  # the factory's category


def index_of(places: list[GeoPoint]) -> IncidentIndex:
    index = IncidentIndex()
    for sequence, where in enumerate(places, start=1):
        event = reported(f"i{sequence}")
        event = event.model_copy(
            update={"report": event.report.model_copy(update={"location": where})}
        )
        index.absorb([StoredEvent(sequence, event)])
    return index


places_near = st.tuples(
    st.one_of(st.floats(114.0, 114.2), st.floats(179.99, 180), st.floats(-180, -179.99)),
    st.one_of(st.floats(22.6, 22.7), st.floats(-60.0, -59.99)),
    st.lists(st.tuples(st.floats(-0.02, 0.02), st.floats(-0.01, 0.01)), min_size=1, max_size=40),
)


@given(places_near, st.sampled_from([30.0, 300.0, 1000.0]))
def test_every_open_incident_within_the_radius_is_found(
    near: tuple[float, float, list[tuple[float, float]]], radius: float
) -> None:
    lon, lat, offsets = near
    here = GeoPoint(lon=lon, lat=lat)
    places = [GeoPoint(lon=(lon + dx + 180.0) % 360.0 - 180.0, lat=lat + dy) for dx, dy in offsets]
    index = index_of(places)
    found = {state.incident_id for state in index.open_near(CATEGORY, here, radius)}
    numbered = enumerate(places, start=1)
    within = {f"i{n}" for n, where in numbered if distance_m(here, where) <= radius}
    assert within <= found


def test_incidents_far_away_closed_or_of_another_matter_are_not_looked_at() -> None:
    here = GeoPoint(lon=114.1, lat=22.65)
    index = index_of([here, GeoPoint(lon=114.15, lat=22.65), here])
    index.absorb([StoredEvent(4, Closed(incident_id="i3", source="tests", actor=reported().actor,
                                        correlation_id="c"))])  # fmt: skip
    assert [s.incident_id for s in index.open_near(CATEGORY, here, 300.0)] == ["i1"]
    assert index.open_near("another.matter", here, 300.0) == []
