"""The cells and buckets a duplicate rule reaches hold every report within its radius and
window, anywhere on the sphere (poles and antimeridian included), and only a few of them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from civicgrid.events.base import GeoPoint
from civicgrid.intake.domain.cells import Grid, bucket_of, near_buckets
from civicgrid.intake.domain.duplicates import EARTH_RADIUS_M, distance_m


def destination(start: GeoPoint, bearing_deg: float, metres: float) -> GeoPoint:
    lat, lon = math.radians(start.lat), math.radians(start.lon)
    angle, bearing = metres / EARTH_RADIUS_M, math.radians(bearing_deg)
    lat2 = math.asin(
        math.sin(lat) * math.cos(angle) + math.cos(lat) * math.sin(angle) * math.cos(bearing)
    )
    lon2 = lon + math.atan2(
        math.sin(bearing) * math.sin(angle) * math.cos(lat),
        math.cos(angle) - math.sin(lat) * math.sin(lat2),
    )
    wrapped = (math.degrees(lon2) + 180.0) % 360.0 - 180.0
    return GeoPoint(lon=wrapped, lat=max(-90.0, min(90.0, math.degrees(lat2))))


latitudes = st.one_of(
    st.floats(-90, 90), st.floats(89.9, 90), st.floats(-90, -89.9), st.floats(22.4, 22.9)
)
longitudes = st.one_of(st.floats(-180, 180), st.floats(179.99, 180), st.floats(-180, -179.99))
radii = st.sampled_from([20.0, 50.0, 100.0, 300.0, 1000.0])


@given(latitudes, longitudes, radii, st.floats(0, 360), st.floats(0, 1))
def test_every_report_within_the_radius_is_in_a_near_cell(
    lat: float, lon: float, radius: float, bearing: float, fraction: float
) -> None:
    here = GeoPoint(lon=lon, lat=lat)
    there = destination(here, bearing, radius * fraction)
    if distance_m(here, there) > radius:
        return  # rounding at the edge of the radius: not a duplicate anyway
    grid = Grid(radius)
    assert grid.cell_of(there) in grid.near_cells(here)
    assert grid.cell_of(here) in grid.near_cells(there)


@given(st.floats(-60, 60), st.floats(-180, 180), radii)
def test_away_from_the_poles_a_handful_of_cells_is_read(
    lat: float, lon: float, radius: float
) -> None:
    assert len(Grid(radius).near_cells(GeoPoint(lon=lon, lat=lat))) <= 6


def test_reports_a_few_radii_apart_are_in_cells_that_do_not_meet() -> None:
    grid = Grid(300.0)
    here = GeoPoint(lon=114.25, lat=22.72)
    far = destination(here, 90.0, 5 * 300.0)
    assert not set(grid.near_cells(here)) & set(grid.near_cells(far))


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from([1.0, 60.0, 360.0, 10080.0]),
    st.floats(-1, 1),
)
def test_every_report_within_the_window_is_in_a_near_bucket(
    when: datetime, window: float, fraction: float
) -> None:
    here = when.replace(tzinfo=UTC)
    there = here + timedelta(minutes=window * fraction)
    assert bucket_of(there, window) in near_buckets(here, window)
    assert len(near_buckets(here, window)) <= 2
