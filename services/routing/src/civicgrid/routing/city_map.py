"""The routing domain's CityMap, backed by ``civicgrid.city``.

Point look-ups go through ``GeoIndex.locate``, the same code ``civicgrid.city.bench`` measures;
the index searches up to ``SEARCH_RADIUS_M`` for a point outside every micro-grid, and the
policy version in force decides how much of that is within tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import shapely
from shapely.geometry import Point

from civicgrid.city import City, GeoIndex, Matter
from civicgrid.city import Unit as CityUnit
from civicgrid.events.base import UnitKind
from civicgrid.routing.domain.city import AreaKind, Place, Unit
from civicgrid.routing.domain.policy import MAX_TOLERANCE_M

SEARCH_RADIUS_M = MAX_TOLERANCE_M


class CityMapAdapter:
    def __init__(self, city: City) -> None:
        self.city = city
        self.index = GeoIndex(city, tolerance_m=SEARCH_RADIUS_M)
        units: dict[str, Unit] = {}
        grid_community = {grid.id: grid.community_id for grid in city.grids}
        for unit in city.units_by_id.values():
            units[unit.id] = _unit(unit, grid_community.get(unit.id))
        self._units: Mapping[str, Unit] = units
        self._command_centre = units[city.command_centre.id]

    @property
    def command_centre(self) -> Unit:
        return self._command_centre

    @cached_property
    def default_sla_class(self) -> str:
        classes = self.city.sla.classes
        return "standard" if "standard" in classes else next(iter(classes))

    @cached_property
    def sla_classes(self) -> frozenset[str]:
        return frozenset(self.city.sla.classes)

    def matter(self, code: str) -> Matter | None:
        return self.city.matters_by_code.get(code)

    def unit(self, unit_id: str) -> Unit | None:
        return self._units.get(unit_id)

    def locate(self, lon: float, lat: float) -> Place | None:
        located = self.index.locate(lon, lat)
        if located is None:
            return None
        return Place(
            grid_id=located.grid_id,
            community_id=located.community_id,
            micro_grid_id=located.micro_grid_id,
            how=located.how,
            distance_m=located.distance_m,
        )

    def nearest_other(
        self, kind: AreaKind, lon: float, lat: float, *, excluding: frozenset[str], within_m: float
    ) -> Place | None:
        ids, tree = self._grid_tree if kind == "grid" else self._community_tree
        x, y = self.city.projection.to_metres(lon, lat)
        point = Point(x, y)
        hits = tree.query(point, predicate="dwithin", distance=within_m)
        best: tuple[float, str] | None = None
        for index in hits.tolist():
            area_id = ids[index]
            if area_id in excluding:
                continue
            distance = float(tree.geometries[index].distance(point))
            if best is None or (distance, area_id) < best:
                best = (distance, area_id)
        if best is None:
            return None
        distance, area_id = best
        if kind == "grid":
            return Place(area_id, self.city.grid(area_id).community_id, None, "nearest", distance)
        grid_id = self._nearest_grid_in(area_id, point)
        return Place(grid_id, area_id, None, "nearest", distance)

    def _nearest_grid_in(self, community_id: str, point: Point) -> str:
        grids = self.city.grids_in(community_id)
        projection = self.city.projection
        return min(
            grids, key=lambda g: (projection.geometry_to_metres(g.geometry).distance(point), g.id)
        ).id

    @cached_property
    def _grid_tree(self) -> tuple[list[str], shapely.STRtree]:
        projection = self.city.projection
        grids = self.city.grids
        return [g.id for g in grids], shapely.STRtree(
            [projection.geometry_to_metres(g.geometry) for g in grids]
        )

    @cached_property
    def _community_tree(self) -> tuple[list[str], shapely.STRtree]:
        projection = self.city.projection
        communities = self.city.communities
        return [c.id for c in communities], shapely.STRtree(
            [projection.geometry_to_metres(c.geometry) for c in communities]
        )


def _unit(unit: CityUnit, community_id: str | None) -> Unit:
    return Unit(
        id=unit.id,
        kind=UnitKind(unit.kind),
        name=unit.name,
        name_en=unit.name_en,
        community_id=community_id,
    )
