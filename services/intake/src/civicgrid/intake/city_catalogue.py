"""The catalogue intake uses, read from the city configuration (``civicgrid.city``)."""

from __future__ import annotations

from pathlib import Path

from civicgrid.city import City, default_config_dir, load_city
from civicgrid.city import Matter as CityMatter
from civicgrid.intake.catalogue import (
    AttributeDefinition,
    AttributeValue,
    Bounds,
    InMemoryCatalogue,
    Matter,
)
from civicgrid.intake.gazetteer import Gazetteer, Place


def load_catalogue(config_dir: Path | None) -> InMemoryCatalogue:
    """Raises ``CityConfigError`` naming the file and what is wrong: the service stops."""
    return catalogue_of(load_city(config_dir or default_config_dir()))


def catalogue_of(city: City) -> InMemoryCatalogue:
    group_names = {group.code: group.name for group in city.matter_groups}
    min_lon, min_lat, max_lon, max_lat = city.bounds
    return InMemoryCatalogue(
        [_matter(matter, group_names.get(matter.group, matter.group)) for matter in city.matters],
        Bounds(min_lon, min_lat, max_lon, max_lat),
        contains=lambda lon, lat: city.contains(lon, lat, tolerance_m=0),
        jurisdiction_id=city.config_dir.name,
        gazetteer=gazetteer_of(city),
        sla_classes=tuple(city.sla.classes),
    )


EXCLUSIVE_SUFFIX = "专属网格"


def gazetteer_of(city: City) -> Gazetteer:
    """Communities, grids, and the facility an exclusive grid is named after (a school, a
    hospital), each at a point inside its area."""
    places: list[Place] = []
    for kind, areas in (("community", city.communities), ("grid", city.grids)):
        for area in areas:
            point = area.geometry.representative_point()
            places.append(Place(area.name, kind, area.id, point.x, point.y))
            if kind == "grid" and area.name.endswith(EXCLUSIVE_SUFFIX):
                facility = area.name.removesuffix(EXCLUSIVE_SUFFIX)
                places.append(Place(facility, "place", area.id, point.x, point.y))
    return Gazetteer(places)


def _matter(matter: CityMatter, group_name: str) -> Matter:
    return Matter(
        code=matter.code,
        name=matter.name,
        name_en=matter.name_en,
        group=group_name,
        keywords=tuple(matter.keywords),
        on_site=matter.on_site,
        duplicate_radius_m=float(matter.duplicate_radius_m),
        duplicate_window_minutes=float(matter.duplicate_window_minutes),
        attributes=tuple(
            AttributeDefinition(
                code=attribute.code,
                datatype=attribute.datatype,
                required=attribute.required,
                description=attribute.description,
                values=tuple(AttributeValue(v.key, v.name) for v in attribute.values),
                variable=attribute.variable,
                order=attribute.order,
                datatype_description=attribute.datatype_description,
            )
            for attribute in matter.attributes
        ),
    )
