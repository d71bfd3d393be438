"""What routing needs to know about the city, as a port: the rules never touch polygons or files.

The real adapter (``civicgrid.routing.city_map``) wraps ``civicgrid.city``; unit tests use a
small fake. Matters are the city's own model (``civicgrid.city.models.Matter``): plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from civicgrid.city.models import Matter
from civicgrid.events.base import UnitKind, UnitRef
from civicgrid.events.incident_events import HandlingLevel, Jurisdiction

AreaKind = Literal["grid", "community"]


@dataclass(frozen=True, slots=True)
class Unit:
    """Anyone an incident can be assigned to: a grid, a community, a department, ..."""

    id: str
    kind: UnitKind
    name: str
    name_en: str
    community_id: str | None = None
    """For a grid: the community it belongs to."""

    @property
    def ref(self) -> UnitRef:
        return UnitRef(kind=self.kind, id=self.id, name=self.name)

    @property
    def level(self) -> HandlingLevel:
        return LEVEL_OF_KIND[self.kind]

    def label(self) -> str:
        """How the English explanation names it: ``Grid c01-g003 (江滨社区第三网格)``."""
        if self.id in self.name_en:
            return f"{self.name_en} ({self.name})"
        return f"{self.kind.value.replace('_', ' ')} {self.id} ({self.name_en}, {self.name})"


LEVEL_OF_KIND: dict[UnitKind, HandlingLevel] = {
    UnitKind.GRID: HandlingLevel.GRID,
    UnitKind.COMMUNITY: HandlingLevel.COMMUNITY,
    UnitKind.DEPARTMENT: HandlingLevel.DEPARTMENT,
    UnitKind.SOCIAL_ORG: HandlingLevel.SOCIAL_ORG,
    UnitKind.ENTERPRISE: HandlingLevel.SOCIAL_ORG,
    UnitKind.UNIVERSITY: HandlingLevel.SOCIAL_ORG,
    UnitKind.COMMAND_CENTRE: HandlingLevel.COMMAND_CENTRE,
}


@dataclass(frozen=True, slots=True)
class Place:
    """Where a point falls: inside a micro-grid, or ``distance_m`` from the nearest grid."""

    grid_id: str
    community_id: str
    micro_grid_id: str | None
    how: Literal["inside", "nearest"]
    distance_m: float = 0.0

    @property
    def jurisdiction(self) -> Jurisdiction:
        return Jurisdiction(
            community_id=self.community_id, grid_id=self.grid_id, micro_grid_id=self.micro_grid_id
        )


class CityMap(Protocol):
    """The city as routing sees it."""

    @property
    def command_centre(self) -> Unit: ...

    @property
    def default_sla_class(self) -> str:
        """The SLA class of an incident whose category is not in the matter list."""
        ...

    @property
    def sla_classes(self) -> frozenset[str]: ...

    def matter(self, code: str) -> Matter | None: ...

    def unit(self, unit_id: str) -> Unit | None:
        """Any unit by id: departments, organisations, the command centre, grids, communities."""
        ...

    def locate(self, lon: float, lat: float) -> Place | None:
        """The micro-grid the point is in, else the nearest grid (with its distance).

        None only when the city has nothing near at all; the caller applies its own tolerance
        to a ``nearest`` answer.
        """
        ...

    def nearest_other(
        self, kind: AreaKind, lon: float, lat: float, *, excluding: frozenset[str], within_m: float
    ) -> Place | None:
        """The nearest grid (or community) to the point, other than ``excluding``, within reach.

        For kind ``community`` the answer's ``grid_id`` is the community's grid nearest the point.
        """
        ...
