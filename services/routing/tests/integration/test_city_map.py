"""Routing's view of the shipped city: the same look-up code the city benchmark measures."""

from __future__ import annotations

import random

import pytest
from shapely.geometry import Point

from civicgrid.city import GeoIndex
from civicgrid.events.base import GeoPoint
from civicgrid.routing.config import RoutingConfig
from civicgrid.routing.domain import Context, route_new_report


def test_routing_locates_points_with_the_city_geoindex(routing_config: RoutingConfig) -> None:
    city_map = routing_config.city
    assert type(city_map.index) is GeoIndex
    reference = GeoIndex(city_map.city)
    rng = random.Random(3311)
    for _ in range(500):
        lon, lat = reference.random_point(rng)
        place = city_map.locate(lon, lat)
        located = reference.locate(lon, lat)
        assert place is not None and located is not None
        assert (place.micro_grid_id, place.grid_id, place.community_id, place.how) == (
            located.micro_grid_id,
            located.grid_id,
            located.community_id,
            "inside",
        )


def test_a_point_offshore_is_measured_and_the_policy_tolerance_decides(
    routing_config: RoutingConfig,
) -> None:
    city = routing_config.city.city
    min_lon, _, max_lon, max_lat = city.bounds
    # Due north of the city's northernmost vertex, 300 m and 3 km out: nothing is nearer.
    north = max(city.communities, key=lambda c: c.geometry.bounds[3])
    peak = max((Point(xy) for xy in _coords(north.geometry)), key=lambda p: p.y)
    metres_per_deg_lat = city.projection.metres_per_deg_lat
    near = GeoPoint(lon=peak.x, lat=peak.y + 300 / metres_per_deg_lat)
    far = GeoPoint(lon=peak.x, lat=peak.y + 3000 / metres_per_deg_lat)
    ctx = Context(routing_config.city, routing_config.configured_policy)  # 500 m tolerance
    category = next(m.code for m in city.matters if m.handling_level == "grid")

    close = route_new_report(ctx, category, near)
    assert close.rule == "grid.nearest"
    assert close.place is not None and 290 < close.place.distance_m < 310
    away = route_new_report(ctx, category, far)
    assert away.rule == "command_centre.outside_city"
    assert "beyond the 500 m tolerance" in away.explanation
    assert min_lon <= peak.x <= max_lon and peak.y == pytest.approx(max_lat)


def test_the_nearest_other_grid_is_a_neighbour_of_the_excluded_one(
    routing_config: RoutingConfig,
) -> None:
    city_map = routing_config.city
    grid = city_map.city.grid("c01-g001")
    inside = grid.geometry.representative_point()
    other = city_map.nearest_other(
        "grid", inside.x, inside.y, excluding=frozenset({grid.id}), within_m=5000
    )
    assert other is not None and other.grid_id != grid.id
    assert city_map.city.grid(other.grid_id).geometry.touches(grid.geometry)
    community = city_map.nearest_other(
        "community", inside.x, inside.y, excluding=frozenset({"c01"}), within_m=10_000
    )
    assert community is not None and community.community_id != "c01"
    assert city_map.city.grid(community.grid_id).community_id == community.community_id


def _coords(geometry: object) -> list[tuple[float, float]]:
    polygons = getattr(geometry, "geoms", [geometry])
    return [xy for polygon in polygons for xy in polygon.exterior.coords]
