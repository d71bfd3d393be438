"""The city's communities and grids as SVG path data, drawn by the service (no map library,
no tiles, nothing fetched from the internet: a city's command centre is often offline)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from civicgrid.city.city import City

WIDTH = 1000.0
# About 20 m: invisible at a wall display's scale, and it keeps the page small.
SIMPLIFY_DEGREES = 0.0002


@dataclass(frozen=True)
class Frame:
    min_lon: float
    max_lat: float
    scale: float  # SVG units per degree of longitude
    aspect: float  # cos(latitude): a degree of longitude is shorter than one of latitude

    def point(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            (lon - self.min_lon) * self.scale,
            (self.max_lat - lat) * self.scale / self.aspect,
        )


def _rings(geometry: BaseGeometry) -> list[list[tuple[float, float]]]:
    polygons = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    rings: list[list[tuple[float, float]]] = []
    for polygon in polygons:
        if not isinstance(polygon, Polygon) or polygon.is_empty:
            continue
        rings.append(list(polygon.exterior.coords))
        rings += [list(interior.coords) for interior in polygon.interiors]
    return rings


@dataclass
class CityMap:
    city: City

    @cached_property
    def frame(self) -> Frame:
        min_lon, min_lat, max_lon, max_lat = self.city.bounds
        aspect = math.cos(math.radians((min_lat + max_lat) / 2))
        return Frame(min_lon, max_lat, WIDTH / (max_lon - min_lon), aspect)

    @cached_property
    def height(self) -> float:
        min_lon, min_lat, _, _ = self.city.bounds
        return self.frame.point(min_lon, min_lat)[1]

    def path(self, geometry: BaseGeometry) -> str:
        simplified = geometry.simplify(SIMPLIFY_DEGREES, preserve_topology=True)
        parts = []
        for ring in _rings(simplified):
            points = [self.frame.point(lon, lat) for lon, lat in ring]
            parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in points) + "Z")
        return "".join(parts)

    def _shape(self, area_id: str, name: str, geometry: BaseGeometry) -> dict[str, Any]:
        centre = geometry.representative_point()
        x, y = self.frame.point(centre.x, centre.y)
        return {"id": area_id, "name": name, "path": self.path(geometry), "x": x, "y": y}

    @cached_property
    def communities(self) -> dict[str, Any]:
        return {
            "viewBox": f"0 0 {WIDTH:.0f} {self.height:.0f}",
            "communities": [self._shape(c.id, c.name, c.geometry) for c in self.city.communities],
        }

    def grids(self, community_id: str) -> dict[str, Any]:
        community = self.city.community(community_id)
        min_lon, min_lat, max_lon, max_lat = community.geometry.bounds
        left, top = self.frame.point(min_lon, max_lat)
        right, bottom = self.frame.point(max_lon, min_lat)
        return {
            "viewBox": f"{left:.1f} {top:.1f} {right - left:.1f} {bottom - top:.1f}",
            "grids": [
                self._shape(g.id, g.name, g.geometry) for g in self.city.grids_in(community_id)
            ],
        }
