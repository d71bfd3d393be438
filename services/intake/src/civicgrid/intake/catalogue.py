"""The part of the city configuration intake needs: the matter list, the city's extent, and
the SLA class names (``sla.yaml``) a command centre may order.

A port, so that the domain and the tests do not depend on how the city is loaded; the
adapter over ``civicgrid.city`` lives in ``city_catalogue``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from civicgrid.intake.domain.duplicates import DuplicateRule
from civicgrid.intake.gazetteer import Gazetteer


@dataclass(frozen=True)
class AttributeValue:
    key: str
    name: str


@dataclass(frozen=True)
class AttributeDefinition:
    """An Open311 service-definition attribute."""

    code: str
    datatype: str  # string, number, datetime, text, singlevaluelist, multivaluelist
    required: bool
    description: str
    values: tuple[AttributeValue, ...] = ()
    variable: bool = True
    order: int | None = None
    datatype_description: str | None = None


@dataclass(frozen=True)
class Matter:
    """One entry of the matter list (事项清单), which is also Open311's service list."""

    code: str
    name: str
    name_en: str
    group: str
    keywords: tuple[str, ...]
    on_site: bool
    duplicate_radius_m: float
    duplicate_window_minutes: float
    attributes: tuple[AttributeDefinition, ...] = ()

    @property
    def duplicate_rule(self) -> DuplicateRule:
        return DuplicateRule(self.duplicate_radius_m, self.duplicate_window_minutes)


@dataclass(frozen=True)
class Bounds:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contain(self, lon: float, lat: float) -> bool:
        return self.min_lon <= lon <= self.max_lon and self.min_lat <= lat <= self.max_lat


class Catalogue(Protocol):
    @property
    def matters(self) -> Sequence[Matter]: ...

    def matter(self, code: str) -> Matter | None: ...

    @property
    def jurisdiction_id(self) -> str:
        """The city's id in Open311 (``jurisdiction_id``)."""
        ...

    @property
    def gazetteer(self) -> Gazetteer:
        """The places an Open311 ``address_string`` may name instead of lat/long."""
        ...

    @property
    def bounds(self) -> Bounds: ...

    def contains(self, lon: float, lat: float) -> bool:
        """Inside the city's land, not merely its bounding box."""
        ...

    @property
    def sla_classes(self) -> Sequence[str]:
        """The SLA classes of ``sla.yaml``, in its order."""
        ...


class InMemoryCatalogue:
    """A catalogue held in memory: for tests, for documents, and as the adapter's result."""

    def __init__(
        self,
        matters: Sequence[Matter],
        bounds: Bounds,
        contains: Callable[[float, float], bool] | None = None,
        jurisdiction_id: str = "city",
        gazetteer: Gazetteer | None = None,
        sla_classes: Sequence[str] = (),
    ) -> None:
        self._matters = {matter.code: matter for matter in matters}
        self._bounds = bounds
        self._contains = contains
        self._jurisdiction_id = jurisdiction_id
        self._gazetteer = gazetteer or Gazetteer()
        self._sla_classes = tuple(sla_classes)

    @property
    def matters(self) -> Sequence[Matter]:
        return list(self._matters.values())

    def matter(self, code: str) -> Matter | None:
        return self._matters.get(code)

    @property
    def jurisdiction_id(self) -> str:
        return self._jurisdiction_id

    @property
    def gazetteer(self) -> Gazetteer:
        return self._gazetteer

    def add(self, matter: Matter) -> None:
        self._matters[matter.code] = matter

    @property
    def bounds(self) -> Bounds:
        return self._bounds

    @property
    def sla_classes(self) -> Sequence[str]:
        return self._sla_classes

    def contains(self, lon: float, lat: float) -> bool:
        if not self._bounds.contain(lon, lat):
            return False
        return self._contains(lon, lat) if self._contains is not None else True
