"""Reading city.geojson into communities, grids and micro-grids, with cheap geometry checks.

Load-time checks are the ones that stay fast for thousands of polygons: every polygon valid,
ids unique, parents of the right kind, and each child inside its parent's bounding box with its
representative point inside the parent. Full tiling (no overlaps, children exactly covering the
parent) is the generator's and its tests' job.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from pydantic import BaseModel, ConfigDict, ValidationError
from shapely.geometry import MultiPolygon, Polygon, shape

from civicgrid.city.areas import AreaId, AreaKind, Community, Grid, GridType, MicroGrid
from civicgrid.city.errors import CityConfigError, Problem
from civicgrid.city.models import Key, Text

Complain = Callable[[str | None, str], None]

# Slack for bounding-box comparisons: far below the 1e-6 degree precision of the file.
_BOUNDS_SLACK_DEG = 1e-9


class FeatureProperties(BaseModel):
    """Exactly the properties a city.geojson feature may carry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: AreaId
    name: Text
    kind: AreaKind
    parent_id: AreaId | None = None
    grid_type: GridType | None = None
    exclusive_kind: Key | None = None


@dataclass(frozen=True)
class CityAreas:
    communities: tuple[Community, ...]
    grids: tuple[Grid, ...]
    micro_grids: tuple[MicroGrid, ...]
    coordinate_system: str | None


@dataclass(frozen=True)
class _Feature:
    index: int
    props: FeatureProperties
    geometry: Polygon | MultiPolygon

    @property
    def subject(self) -> str:
        return f"features[{self.index}] (id {self.props.id!r})"


WGS84_NAMES = frozenset({"WGS84", "EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84"})


def read_city_geojson(path: Path) -> CityAreas:
    document = _read_json(path)
    problems: list[Problem] = []

    def complain(subject: str | None, reason: str) -> None:
        problems.append(Problem(path, reason, subject=subject))

    features, unreadable = _parse_features(document, complain)
    by_id = _index_by_id(features, complain)
    _check_nesting(features, by_id, unreadable, complain)
    _check_geometry(features, by_id, complain)
    metadata = document.get("metadata")
    crs = metadata.get("coordinate_system") if isinstance(metadata, dict) else None
    if crs is not None and crs not in WGS84_NAMES:
        # RFC 7946: GeoJSON is WGS84. Every service stores and serves WGS84, so a city in
        # another datum would put every report hundreds of metres off.
        complain(
            "metadata.coordinate_system",
            f"must be WGS84 (RFC 7946), not {crs!r}: convert the coordinates when generating"
            " the city (tools/citygen converts GCJ-02)",
        )
    if problems:
        raise CityConfigError(problems)
    return _build(features, "WGS84")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CityConfigError([Problem(path, "file is missing")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CityConfigError([Problem(path, f"cannot read: {exc}")]) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CityConfigError(
            [Problem(path, f"malformed JSON: {exc.msg} (column {exc.colno})", line=exc.lineno)]
        ) from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise CityConfigError([Problem(path, "expected a GeoJSON FeatureCollection")])
    if not isinstance(document.get("features"), list) or not document["features"]:
        raise CityConfigError([Problem(path, "the FeatureCollection has no features")])
    return document


def _parse_features(
    document: dict[str, Any], complain: Complain
) -> tuple[list[_Feature], set[str]]:
    """The readable features, and the ids of those that could not be read."""
    features: list[_Feature] = []
    unreadable: set[str] = set()
    for index, raw in enumerate(document["features"]):
        subject = f"features[{index}]"
        if not isinstance(raw, dict) or raw.get("type") != "Feature":
            complain(subject, "not a GeoJSON Feature")
            continue
        properties = raw.get("properties")
        if isinstance(properties, dict) and isinstance(properties.get("id"), str):
            subject = f"features[{index}] (id {properties['id']!r})"
            # Whatever else is wrong with it, its children should not also report it missing.
            unreadable.add(properties["id"])
        try:
            props = FeatureProperties.model_validate(properties)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                field = ".".join(str(step) for step in error["loc"]) or "properties"
                complain(subject, f"{field}: {error['msg']}")
            continue
        geometry = _parse_geometry(raw.get("geometry"), subject, complain)
        if geometry is not None:
            features.append(_Feature(index, props, geometry))
            unreadable.discard(props.id)
    return features, unreadable


def _parse_geometry(raw: Any, subject: str, complain: Complain) -> Polygon | MultiPolygon | None:
    if not isinstance(raw, dict) or raw.get("type") not in ("Polygon", "MultiPolygon"):
        got = raw.get("type") if isinstance(raw, dict) else raw
        complain(subject, f"geometry must be a Polygon or MultiPolygon, got {got!r}")
        return None
    try:
        geometry = shape(raw)
    except (ValueError, TypeError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        complain(subject, f"unreadable {raw['type']} coordinates: {exc}")
        return None
    if geometry.is_empty:
        complain(subject, "empty geometry")
        return None
    return geometry


def _index_by_id(features: list[_Feature], complain: Complain) -> dict[str, _Feature]:
    by_id: dict[str, _Feature] = {}
    for feature in features:
        first = by_id.setdefault(feature.props.id, feature)
        if first is not feature:
            complain(feature.subject, f"duplicate id, already used by features[{first.index}]")
    return by_id


_PARENT_KIND: dict[str, str | None] = {"community": None, "grid": "community", "micro_grid": "grid"}


def _check_nesting(
    features: list[_Feature], by_id: dict[str, _Feature], unreadable: set[str], complain: Complain
) -> None:
    children: dict[str, int] = defaultdict(int)
    for feature in features:
        props = feature.props
        wanted = _PARENT_KIND[props.kind]
        if wanted is None:
            if props.parent_id is not None:
                complain(feature.subject, "a community has no parent; parent_id must be null")
        elif props.parent_id is None:
            complain(feature.subject, f"a {props.kind} needs a parent_id naming its {wanted}")
        elif props.parent_id in unreadable:
            pass  # the parent's own problem has been reported
        elif (parent := by_id.get(props.parent_id)) is None:
            complain(feature.subject, f"parent_id {props.parent_id!r} points to no feature")
        elif parent.props.kind != wanted:
            complain(
                feature.subject,
                f"parent_id {props.parent_id!r} is a {parent.props.kind}, "
                f"but a {props.kind}'s parent must be a {wanted}",
            )
        else:
            children[props.parent_id] += 1
        if props.kind == "grid":
            if props.grid_type is None:
                complain(feature.subject, "a grid needs grid_type 'full' or 'exclusive'")
            elif props.grid_type == "exclusive" and props.exclusive_kind is None:
                complain(feature.subject, "an exclusive grid needs an exclusive_kind")
            elif props.grid_type == "full" and props.exclusive_kind is not None:
                complain(feature.subject, "exclusive_kind is only for exclusive grids")
        elif props.grid_type is not None or props.exclusive_kind is not None:
            complain(
                feature.subject, f"grid_type and exclusive_kind are for grids, not a {props.kind}"
            )
    for feature in features:
        if feature.props.kind != "micro_grid" and children[feature.props.id] == 0:
            below = "grids" if feature.props.kind == "community" else "micro-grids"
            complain(feature.subject, f"has no {below}: every point must locate somewhere")


def _check_geometry(
    features: list[_Feature], by_id: dict[str, _Feature], complain: Complain
) -> None:
    geometries = [f.geometry for f in features]
    for feature, valid in zip(features, shapely.is_valid(geometries), strict=True):
        if not valid:
            reason = shapely.is_valid_reason(feature.geometry)
            complain(feature.subject, f"invalid polygon: {reason}")
    pairs = [
        (f, by_id[f.props.parent_id])
        for f in features
        if f.props.parent_id in by_id
        and by_id[f.props.parent_id].props.kind == _PARENT_KIND[f.props.kind]
    ]
    if not pairs:
        return
    child_bounds = shapely.bounds([c.geometry for c, _ in pairs])
    parent_bounds = shapely.bounds([p.geometry for _, p in pairs])
    points = shapely.point_on_surface([c.geometry for c, _ in pairs])
    inside = shapely.covers([p.geometry for _, p in pairs], points)
    for i, (child, parent) in enumerate(pairs):
        (cx0, cy0, cx1, cy1), (px0, py0, px1, py1) = child_bounds[i], parent_bounds[i]
        slack = _BOUNDS_SLACK_DEG
        boxed = (
            cx0 >= px0 - slack and cy0 >= py0 - slack and cx1 <= px1 + slack and cy1 <= py1 + slack
        )
        if not boxed or not inside[i]:
            complain(child.subject, f"lies outside its parent {parent.props.id!r}")


def _build(features: list[_Feature], coordinate_system: str | None) -> CityAreas:
    by_id = {f.props.id: f for f in features}
    communities: list[Community] = []
    grids: list[Grid] = []
    micro_grids: list[MicroGrid] = []
    for feature in sorted(features, key=lambda f: f.props.id):
        props = feature.props
        common: dict[str, Any] = {"id": props.id, "name": props.name, "geometry": feature.geometry}
        if props.kind == "community":
            communities.append(Community(**common))
        elif props.kind == "grid":
            assert props.parent_id is not None and props.grid_type is not None
            grids.append(
                Grid(
                    **common,
                    community_id=props.parent_id,
                    grid_type=props.grid_type,
                    exclusive_kind=props.exclusive_kind,
                )
            )
        else:
            assert props.parent_id is not None
            grid = by_id[props.parent_id].props
            assert grid.parent_id is not None
            micro_grids.append(
                MicroGrid(**common, grid_id=props.parent_id, community_id=grid.parent_id)
            )
    return CityAreas(tuple(communities), tuple(grids), tuple(micro_grids), coordinate_system)
