"""Communities, grids and micro-grids: the city's nested areas, with their polygons."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import MultiPolygon, Polygon

from civicgrid.city.models import Key, SafeId, Text

AreaKind = Literal["community", "grid", "micro_grid"]
GridType = Literal["full", "exclusive"]

AreaId = SafeId


class _Area(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    id: AreaId
    name: Text
    # Longitude/latitude in the city's coordinate system (see City.coordinate_system).
    geometry: Polygon | MultiPolygon = Field(repr=False)


class Community(_Area):
    """A community governance unit (社区), managed directly by the city."""

    kind: Literal["community"] = "community"


class Grid(_Area):
    """A grid (网格) inside one community, patrolled by its grid workers."""

    kind: Literal["grid"] = "grid"
    community_id: AreaId
    grid_type: GridType
    exclusive_kind: Key | None = None
    """For exclusive grids: what the grid is, e.g. industrial_park, school, hospital, market."""


class MicroGrid(_Area):
    """A micro-grid (微网格) inside one grid: the finest area an incident is located to."""

    kind: Literal["micro_grid"] = "micro_grid"
    grid_id: AreaId
    community_id: AreaId


Area = Community | Grid | MicroGrid
