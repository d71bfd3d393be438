"""The loaded city: areas, units, matters and policies, with the look-ups services need."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import shapely
from pydantic import BaseModel, ConfigDict
from shapely.geometry import MultiPolygon, Point, Polygon

from civicgrid.city.areas import Area, Community, Grid, MicroGrid
from civicgrid.city.models import (
    CalendarConfig,
    Matter,
    MatterGroup,
    RoutingPolicy,
    SlaPolicy,
    Unit,
)
from civicgrid.city.projection import LocalProjection

_A = TypeVar("_A", Community, Grid, MicroGrid)
_NOUNS: dict[type, str] = {Community: "community", Grid: "grid", MicroGrid: "micro-grid"}


class City(BaseModel):
    """Everything in one configuration directory. Build it with ``load_city``."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    config_dir: Path
    coordinate_system: str | None
    """Datum of all coordinates: always "WGS84" (the loader refuses any other)."""
    communities: tuple[Community, ...]
    grids: tuple[Grid, ...]
    micro_grids: tuple[MicroGrid, ...]
    units: tuple[Unit, ...]
    """Units declared in units.yaml; ``units_by_id`` adds communities and grids."""
    matter_groups: tuple[MatterGroup, ...]
    matters: tuple[Matter, ...]
    sla: SlaPolicy
    calendar: CalendarConfig
    routing: RoutingPolicy

    @cached_property
    def matters_by_code(self) -> Mapping[str, Matter]:
        return MappingProxyType({m.code: m for m in self.matters})

    @cached_property
    def units_by_id(self) -> Mapping[str, Unit]:
        """Every assignable unit: units.yaml's, plus each community and grid as a unit."""
        units = {u.id: u for u in self.units}
        for community in self.communities:
            units[community.id] = Unit(
                id=community.id,
                kind="community",
                name=community.name,
                name_en=f"Community {community.id}",
            )
        for grid in self.grids:
            units[grid.id] = Unit(
                id=grid.id, kind="grid", name=grid.name, name_en=f"Grid {grid.id}"
            )
        return MappingProxyType(units)

    @cached_property
    def command_centre(self) -> Unit:
        return next(u for u in self.units if u.kind == "command_centre")

    @cached_property
    def _areas(self) -> Mapping[str, Area]:
        areas: dict[str, Area] = {}
        for group in (self.communities, self.grids, self.micro_grids):
            areas.update((a.id, a) for a in group)
        return areas

    @cached_property
    def _children(self) -> Mapping[str, tuple[Grid, ...] | tuple[MicroGrid, ...]]:
        grids: dict[str, list[Grid]] = {c.id: [] for c in self.communities}
        micro: dict[str, list[MicroGrid]] = {g.id: [] for g in self.grids}
        for grid in self.grids:
            grids[grid.community_id].append(grid)
        for micro_grid in self.micro_grids:
            micro[micro_grid.grid_id].append(micro_grid)
        children: dict[str, tuple[Grid, ...] | tuple[MicroGrid, ...]] = {}
        children.update((k, tuple(v)) for k, v in grids.items())
        children.update((k, tuple(v)) for k, v in micro.items())
        return children

    def area(self, area_id: str) -> Area:
        """A community, grid or micro-grid by id."""
        try:
            return self._areas[area_id]
        except KeyError:
            raise KeyError(f"no community, grid or micro-grid {area_id!r}") from None

    def community(self, community_id: str) -> Community:
        return self._typed(community_id, Community)

    def grid(self, grid_id: str) -> Grid:
        return self._typed(grid_id, Grid)

    def micro_grid(self, micro_grid_id: str) -> MicroGrid:
        return self._typed(micro_grid_id, MicroGrid)

    def grids_in(self, community_id: str) -> tuple[Grid, ...]:
        self.community(community_id)
        return self._children[community_id]  # type: ignore[return-value]

    def micro_grids_in(self, grid_id: str) -> tuple[MicroGrid, ...]:
        self.grid(grid_id)
        return self._children[grid_id]  # type: ignore[return-value]

    def _typed(self, area_id: str, kind: type[_A]) -> _A:
        area = self._areas.get(area_id)
        if not isinstance(area, kind):
            raise KeyError(f"no {_NOUNS[kind]} {area_id!r}")
        return area

    @cached_property
    def outline(self) -> Polygon | MultiPolygon:
        """The city's land: the union of its communities."""
        outline = shapely.coverage_union_all([c.geometry for c in self.communities])
        shapely.prepare(outline)
        return outline

    @cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat)."""
        min_lon, min_lat, max_lon, max_lat = shapely.total_bounds(
            [c.geometry for c in self.communities]
        )
        return float(min_lon), float(min_lat), float(max_lon), float(max_lat)

    @cached_property
    def projection(self) -> LocalProjection:
        """Local metres around the city's centroid (for distances and tolerances)."""
        centroid = self.outline.centroid
        return LocalProjection(centroid.x, centroid.y)

    @cached_property
    def _outline_m(self) -> Polygon | MultiPolygon:
        outline = self.projection.geometry_to_metres(self.outline)
        shapely.prepare(outline)
        return outline

    def contains(self, lon: float, lat: float, tolerance_m: float = 1.0) -> bool:
        """Inside the city (the union of communities), or within tolerance_m of it."""
        if shapely.intersects_xy(self.outline, lon, lat):
            return True
        if tolerance_m <= 0:
            return False
        x, y = self.projection.to_metres(lon, lat)
        return bool(self._outline_m.distance(Point(x, y)) <= tolerance_m)
