"""Where a duplicate can be: the spatial cells and time buckets a matter's rule reaches.

The sphere is cut into latitude bands of the same angular height, each band into equal
longitude cells; a cell is at least twice the duplicate radius across wherever it lies, and a
time bucket twice the window long. A report lies in one cell and one bucket. Every report
within the radius and window of it lies in one of the cells that the bounding box of its
radius touches, and one of the buckets its window touches (``near_cells``, ``near_buckets``):
at most 2 x 3 cells and 2 buckets away from the poles, so what is near is read with a few
keys, and reports far apart never share one.

The box is the exact one of a spherical cap (latitude +- d, longitude +- asin(sin d / cos lat))
on the sphere ``duplicates.distance_m`` measures on, widened by a metre for rounding; a cap
that holds a pole spans every longitude. Longitude cells wrap around the antimeridian.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from civicgrid.events.base import GeoPoint
from civicgrid.intake.domain.duplicates import EARTH_RADIUS_M

_SLACK_M = 1.0
_MIN_BUCKET_S = 60.0


@dataclass(frozen=True, order=True)
class Cell:
    band: int
    column: int


@dataclass(frozen=True)
class Grid:
    """The cells of one duplicate radius."""

    radius_m: float

    @property
    def _height(self) -> float:
        """A band's angular height: twice the radius."""
        return 2.0 * (self.radius_m + _SLACK_M) / EARTH_RADIUS_M

    def _bands(self) -> int:
        return math.ceil(math.pi / self._height)

    def _band_of(self, lat_rad: float) -> int:
        return min(self._bands() - 1, max(0, math.floor((lat_rad + math.pi / 2) / self._height)))

    def _columns(self, band: int) -> int:
        """So many longitude cells that each is at least a band's height across (in metres,
        at the band's edge nearest the pole)."""
        south = band * self._height - math.pi / 2
        north = min(math.pi / 2, south + self._height)
        narrowest = max(0.0, min(math.cos(south), math.cos(north)))
        return max(1, math.floor(2 * math.pi * narrowest / self._height))

    def _column_of(self, band: int, lon_rad: float) -> int:
        columns = self._columns(band)
        width = 2 * math.pi / columns
        return math.floor((lon_rad + math.pi) / width) % columns

    def cell_of(self, where: GeoPoint) -> Cell:
        band = self._band_of(math.radians(where.lat))
        return Cell(band, self._column_of(band, math.radians(where.lon)))

    def near_cells(self, where: GeoPoint) -> list[Cell]:
        """Every cell that holds a point within the radius of ``where``."""
        lat, lon = math.radians(where.lat), math.radians(where.lon)
        reach, spread = _box(where, self.radius_m)
        cells: set[Cell] = set()
        for band in range(self._band_of(lat - reach), self._band_of(lat + reach) + 1):
            columns = self._columns(band)
            width = 2 * math.pi / columns
            first = math.floor((lon - spread + math.pi) / width)
            last = math.floor((lon + spread + math.pi) / width)
            if last - first + 1 >= columns:
                cells.update(Cell(band, column) for column in range(columns))
            else:
                cells.update(Cell(band, column % columns) for column in range(first, last + 1))
        return sorted(cells)


@dataclass(frozen=True)
class Box:
    """Latitudes and longitudes (degrees) that hold every point within a radius of a point;
    ``west`` may be below -180 or ``east`` above 180 across the antimeridian."""

    south: float
    north: float
    west: float
    east: float

    @property
    def every_longitude(self) -> bool:
        return self.east - self.west >= 360.0


def bounding_box(where: GeoPoint, radius_m: float) -> Box:
    reach, spread = _box(where, radius_m)
    lat_reach, lon_spread = math.degrees(reach), math.degrees(spread)
    return Box(
        max(-90.0, where.lat - lat_reach),
        min(90.0, where.lat + lat_reach),
        where.lon - lon_spread,
        where.lon + lon_spread,
    )


def _box(where: GeoPoint, radius_m: float) -> tuple[float, float]:
    """(latitude reach, longitude spread) in radians of the cap of ``radius_m`` around
    ``where``; a spread of pi when the cap holds a pole."""
    lat = math.radians(where.lat)
    reach = (radius_m + _SLACK_M) / EARTH_RADIUS_M
    if math.cos(lat) > math.sin(reach):
        return reach, math.asin(math.sin(reach) / math.cos(lat))
    return reach, math.pi


def bucket_seconds(window_minutes: float) -> float:
    return max(_MIN_BUCKET_S, 2.0 * window_minutes * 60.0)


def bucket_of(when: datetime, window_minutes: float) -> int:
    return math.floor(when.timestamp() / bucket_seconds(window_minutes))


def near_buckets(when: datetime, window_minutes: float) -> list[int]:
    """Every time bucket that holds an instant within the window of ``when``."""
    width, reach = bucket_seconds(window_minutes), window_minutes * 60.0
    first = math.floor((when.timestamp() - reach) / width)
    last = math.floor((when.timestamp() + reach) / width)
    return list(range(first, last + 1))
