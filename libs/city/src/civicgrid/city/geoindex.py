"""Point to micro-grid look-up.

A point inside (or on the edge of) a micro-grid is located there; where edges are shared, the
micro-grid with the smallest id wins, so every point has exactly one answer. A point outside
every micro-grid (offshore, just over the city line, a GPS fix a little off) goes to the nearest
micro-grid within the routing tolerance, measured in metres; beyond that there is no answer and
the caller routes to the command centre.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import shapely
from pydantic import BaseModel, ConfigDict
from shapely.geometry import Point

from civicgrid.city.city import City

# Rejection sampling gives up after this many misses; only absurdly thin shapes get near it.
_MAX_SAMPLING_ATTEMPTS = 10_000


class Located(BaseModel):
    model_config = ConfigDict(frozen=True)

    micro_grid_id: str
    grid_id: str
    community_id: str
    how: Literal["inside", "nearest"]
    distance_m: float
    """0 inside; otherwise the distance to the nearest micro-grid's edge."""


class GeoIndex:
    """Spatial index over a city's micro-grids (built once, then read-only and thread-safe)."""

    def __init__(self, city: City, tolerance_m: float | None = None) -> None:
        self.city = city
        self.tolerance_m = (
            city.routing.nearest_grid_tolerance_m if tolerance_m is None else tolerance_m
        )
        self._micro_grids = city.micro_grids  # sorted by id: index order is the tie-break
        geometries = [m.geometry for m in self._micro_grids]
        self._tree = shapely.STRtree(geometries)
        self._projection = city.projection
        self._tree_m = shapely.STRtree([self._projection.geometry_to_metres(g) for g in geometries])

    def locate(self, lon: float, lat: float) -> Located | None:
        """The micro-grid for a point, or None when nothing is within the tolerance."""
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ValueError(f"not a coordinate: ({lon}, {lat})")
        hits = self._tree.query(Point(lon, lat), predicate="intersects")
        if len(hits):
            return self._located(int(hits.min()), "inside", 0.0)
        if self.tolerance_m <= 0:
            return None
        x, y = self._projection.to_metres(lon, lat)
        indices, distances = self._tree_m.query_nearest(
            Point(x, y), max_distance=self.tolerance_m, return_distance=True, all_matches=True
        )
        if not len(indices):
            return None
        distance, index = min(zip(distances.tolist(), indices.tolist(), strict=True))
        return self._located(int(index), "nearest", float(distance))

    def _located(self, index: int, how: Literal["inside", "nearest"], distance: float) -> Located:
        micro = self._micro_grids[index]
        return Located(
            micro_grid_id=micro.id,
            grid_id=micro.grid_id,
            community_id=micro.community_id,
            how=how,
            distance_m=distance,
        )

    def random_point_in(self, area_id: str, rng: random.Random) -> tuple[float, float]:
        """A uniformly random (lon, lat) inside a community, grid or micro-grid."""
        geometry = self.city.area(area_id).geometry
        return _random_point(geometry, rng)

    def random_point(self, rng: random.Random) -> tuple[float, float]:
        """A uniformly random (lon, lat) inside the city."""
        return _random_point(self.city.outline, rng)


def _random_point(geometry: shapely.Geometry, rng: random.Random) -> tuple[float, float]:
    shapely.prepare(geometry)
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    for _ in range(_MAX_SAMPLING_ATTEMPTS):
        lon, lat = rng.uniform(min_lon, max_lon), rng.uniform(min_lat, max_lat)
        if shapely.contains_xy(geometry, lon, lat):
            return lon, lat
    point = geometry.representative_point()
    return float(point.x), float(point.y)
