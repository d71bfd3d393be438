"""The shipped polygons tile the city: valid, nested exactly, never overlapping."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from civicgrid.city import City
from civicgrid.city.datum import gcj02_to_wgs84

# Areas here are in square degrees: 1e-12 deg^2 is about 0.01 m^2.
OVERLAP_EPSILON = 1e-12


def max_pairwise_overlap(geometries: Sequence[BaseGeometry]) -> float:
    tree = shapely.STRtree(list(geometries))
    left, right = tree.query(list(geometries), predicate="intersects")
    pairs = left < right
    array = np.array(geometries, dtype=object)
    overlaps = shapely.area(shapely.intersection(array[left[pairs]], array[right[pairs]]))
    return float(overlaps.max()) if len(overlaps) else 0.0


def test_every_polygon_is_valid(city: City) -> None:
    areas = [*city.communities, *city.grids, *city.micro_grids]
    assert all(shapely.is_valid([a.geometry for a in areas]))


def test_coordinates_are_rounded_to_six_decimals(shipped_dir: Path) -> None:
    text = (shipped_dir / "city.geojson").read_text(encoding="utf-8")
    document = json.loads(text)
    coords = shapely.get_coordinates([shape(f["geometry"]) for f in document["features"][:200]])
    assert np.array_equal(coords, np.round(coords, 6))


def test_micro_grids_do_not_overlap(city: City) -> None:
    assert max_pairwise_overlap([m.geometry for m in city.micro_grids]) < OVERLAP_EPSILON


def test_grids_do_not_overlap(city: City) -> None:
    assert max_pairwise_overlap([g.geometry for g in city.grids]) < OVERLAP_EPSILON


def test_communities_do_not_overlap(city: City) -> None:
    assert max_pairwise_overlap([c.geometry for c in city.communities]) < OVERLAP_EPSILON


def test_each_grid_lies_within_its_community_and_together_they_fill_it(city: City) -> None:
    for community in city.communities:
        grids = [g.geometry for g in city.grids_in(community.id)]
        assert all(community.geometry.covers(g) for g in grids), community.id
        union = shapely.coverage_union_all(grids)
        assert union.symmetric_difference(community.geometry).area < OVERLAP_EPSILON


def test_each_micro_grid_lies_within_its_grid_and_together_they_fill_it(city: City) -> None:
    for grid in city.grids:
        micro = [m.geometry for m in city.micro_grids_in(grid.id)]
        assert all(grid.geometry.covers(m) for m in micro), grid.id
        union = shapely.coverage_union_all(micro)
        assert union.symmetric_difference(grid.geometry).area < OVERLAP_EPSILON


def test_the_communities_cover_the_real_outline(city: City, shipped_dir: Path) -> None:
    """outline.geojson is the GCJ-02 source; the city is drawn over its WGS84 conversion."""
    document = json.loads((shipped_dir / "outline.geojson").read_text(encoding="utf-8"))
    assert document["features"][0]["properties"]["coordinate_system"] == "GCJ-02"

    def to_wgs84(points: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.array([gcj02_to_wgs84(float(x), float(y)) for x, y in points])

    outline = shapely.transform(shape(document["features"][0]["geometry"]), to_wgs84)
    assert abs(city.outline.area / outline.area - 1) < 1e-4
    assert city.outline.symmetric_difference(outline).area / outline.area < 1e-4


def test_only_land_split_by_the_sea_makes_multi_part_areas(city: City) -> None:
    # The outline has islands; whichever areas take them are the only multi-part ones.
    multi = [
        a.id
        for a in (*city.communities, *city.grids, *city.micro_grids)
        if a.geometry.geom_type == "MultiPolygon"
    ]
    islands = len(shapely.get_parts(city.outline)) - 1
    assert len(multi) <= 3 * islands
    assert all(
        len(p.interiors) == 0 for m in city.micro_grids for p in shapely.get_parts(m.geometry)
    )
