"""Metres from longitude/latitude, good enough across one city.

An equirectangular projection around the city's centroid distorts distances by well under 1%
over a county-sized area, which is plenty for "is this point within 500 m of a grid".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shapely import affinity
from shapely.geometry.base import BaseGeometry

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


@dataclass(frozen=True)
class LocalProjection:
    lon0: float
    lat0: float
    metres_per_deg_lon: float = field(init=False)
    metres_per_deg_lat: float = field(init=False)

    def __post_init__(self) -> None:
        per_deg = math.radians(1.0) * EARTH_RADIUS_M
        object.__setattr__(self, "metres_per_deg_lat", per_deg)
        object.__setattr__(self, "metres_per_deg_lon", per_deg * math.cos(math.radians(self.lat0)))

    def to_metres(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            (lon - self.lon0) * self.metres_per_deg_lon,
            (lat - self.lat0) * self.metres_per_deg_lat,
        )

    def geometry_to_metres(self, geometry: BaseGeometry) -> BaseGeometry:
        kx, ky = self.metres_per_deg_lon, self.metres_per_deg_lat
        matrix = [kx, 0.0, 0.0, ky, -self.lon0 * kx, -self.lat0 * ky]
        return affinity.affine_transform(geometry, matrix)

    def distance_m(self, lon1: float, lat1: float, lon2: float, lat2: float) -> float:
        x1, y1 = self.to_metres(lon1, lat1)
        x2, y2 = self.to_metres(lon2, lat2)
        return math.hypot(x2 - x1, y2 - y1)
