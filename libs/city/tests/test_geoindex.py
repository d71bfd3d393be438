"""Point to micro-grid look-up: inside, on shared edges, just outside, far away."""

from __future__ import annotations

import math
import random

import pytest
import shapely
from shapely.geometry import Point

from civicgrid.city import City, GeoIndex
from civicgrid.city.bench import bench_lookup


def north_of(lon: float, lat: float, metres: float) -> tuple[float, float]:
    return lon, lat + math.degrees(metres / 6_371_008.8)


def northernmost_point(city: City) -> tuple[float, float]:
    coords = shapely.get_coordinates(city.outline)
    lon, lat = max(coords.tolist(), key=lambda c: (c[1], c[0]))
    return lon, lat


def test_every_micro_grid_locates_its_own_representative_point(city: City, index: GeoIndex) -> None:
    for micro in city.micro_grids:
        point = micro.geometry.representative_point()
        located = index.locate(point.x, point.y)
        assert located is not None
        assert located.micro_grid_id == micro.id
        assert located.grid_id == micro.grid_id
        assert located.community_id == micro.community_id
        assert located.how == "inside"
        assert located.distance_m == 0


def test_a_point_on_a_shared_corner_gets_one_answer_the_smallest_id(
    city: City, index: GeoIndex
) -> None:
    micro = city.micro_grid("c01-g001-m01")
    tree = shapely.STRtree([m.geometry for m in city.micro_grids])
    shared = None
    for lon, lat in shapely.get_coordinates(micro.geometry).tolist():
        owners = tree.query(Point(lon, lat), predicate="intersects")
        if len(owners) >= 3:
            shared = (lon, lat, sorted(city.micro_grids[int(i)].id for i in owners))
            break
    assert shared is not None, "expected a corner where three micro-grids meet"
    lon, lat, owner_ids = shared
    answers = {index.locate(lon, lat) for _ in range(5)}
    assert len(answers) == 1
    (answer,) = answers
    assert answer is not None
    assert answer.micro_grid_id == owner_ids[0]
    assert answer.how == "inside"


def test_a_point_just_outside_the_border_goes_to_the_nearest_micro_grid(
    city: City, index: GeoIndex
) -> None:
    lon, lat = north_of(*northernmost_point(city), metres=120)
    assert not city.contains(lon, lat)
    located = index.locate(lon, lat)
    assert located is not None
    assert located.how == "nearest"
    assert 119 < located.distance_m < 121
    # The answer is the true nearest: check against every micro-grid by brute force.
    projection = city.projection
    point_m = Point(*projection.to_metres(lon, lat))
    distances = [
        (projection.geometry_to_metres(m.geometry).distance(point_m), m.id)
        for m in city.micro_grids
    ]
    assert located.micro_grid_id == min(distances)[1]


def test_a_point_beyond_the_tolerance_is_not_located(city: City, index: GeoIndex) -> None:
    assert index.tolerance_m == 500
    assert index.locate(*north_of(*northernmost_point(city), metres=600)) is None
    assert index.locate(121.5, 28.5) is None


def test_a_zero_tolerance_only_locates_points_inside(city: City) -> None:
    strict = GeoIndex(city, tolerance_m=0)
    assert strict.locate(*north_of(*northernmost_point(city), metres=10)) is None
    inside = city.micro_grid("c02-g001-m01").geometry.representative_point()
    located = strict.locate(inside.x, inside.y)
    assert located is not None
    assert located.micro_grid_id == "c02-g001-m01"


def test_a_coordinate_that_is_not_a_number_is_refused(index: GeoIndex) -> None:
    with pytest.raises(ValueError, match="not a coordinate"):
        index.locate(math.nan, 27.5)


def test_random_points_fall_inside_the_area_asked_for(city: City, index: GeoIndex) -> None:
    rng = random.Random(1)
    for area_id in ("c05", "c05-g002", "c05-g002-m03"):
        geometry = city.area(area_id).geometry
        for _ in range(20):
            lon, lat = index.random_point_in(area_id, rng)
            assert geometry.covers(Point(lon, lat))
    located = index.locate(*index.random_point_in("c05-g002-m03", rng))
    assert located is not None
    assert located.micro_grid_id == "c05-g002-m03"


def test_random_points_are_reproducible_from_the_seed(index: GeoIndex) -> None:
    first = [index.random_point(random.Random(7)) for _ in range(3)]
    second = [index.random_point(random.Random(7)) for _ in range(3)]
    assert first == second


def test_the_lookup_benchmark_reports_a_positive_rate() -> None:
    assert bench_lookup(200) > 0
