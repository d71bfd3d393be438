"""Geometry for the city generator: density-weighted nested Voronoi tiling and the final snap.

Planar work happens in local metres (an equirectangular projection around the outline's
centroid), so Voronoi cells are not squashed by the longitude/latitude aspect ratio. The final
step goes back to degrees and rebuilds every polygon from one noded arrangement on the 1e-6
degree grid, which is what makes neighbours share identical edges and parents equal the exact
union of their children.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

EARTH_RADIUS_M = 6_371_008.8
GRID_DEG = 1e-6
Area: TypeAlias = Polygon | MultiPolygon
Density = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


@dataclass(frozen=True)
class Projection:
    """Equirectangular projection: accurate to well under 1% across a county-sized city."""

    lon0: float
    lat0: float

    @property
    def kx(self) -> float:
        return math.radians(1.0) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    @property
    def ky(self) -> float:
        return math.radians(1.0) * EARTH_RADIUS_M

    def to_metres(self, geometry: BaseGeometry) -> BaseGeometry:
        def forward(coords: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.column_stack(
                ((coords[:, 0] - self.lon0) * self.kx, (coords[:, 1] - self.lat0) * self.ky)
            )

        return shapely.transform(geometry, forward)

    def to_degrees(self, geometry: BaseGeometry) -> BaseGeometry:
        def inverse(coords: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.column_stack(
                (coords[:, 0] / self.kx + self.lon0, coords[:, 1] / self.ky + self.lat0)
            )

        return shapely.transform(geometry, inverse)


def polygons_of(geometry: BaseGeometry) -> list[Polygon]:
    """The polygonal parts of any geometry, largest first (ties broken by position)."""
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon) and not p.is_empty]
    parts.sort(key=lambda p: (-p.area, p.bounds))
    return parts


def as_area(parts: Sequence[Polygon]) -> Area:
    return parts[0] if len(parts) == 1 else MultiPolygon(list(parts))


def sample_points(
    region: Area, n: int, density: Density, rng: np.random.Generator
) -> NDArray[np.float64]:
    """n points inside region, distributed by density (rejection sampling in the bbox)."""
    minx, miny, maxx, maxy = region.bounds
    corners_x = np.array([minx, maxx, minx, maxx, (minx + maxx) / 2])
    corners_y = np.array([miny, miny, maxy, maxy, (miny + maxy) / 2])
    # The density peaks at one point, so its maximum over the box is bounded by the peak value.
    ceiling = float(density(np.array([0.0]), np.array([0.0]))[0])
    ceiling = max(ceiling, float(density(corners_x, corners_y).max()))
    shapely.prepare(region)
    chunks: list[NDArray[np.float64]] = []
    have = 0
    while have < n:
        batch = max(4 * (n - have), 512)
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(batch, 2))
        xy = xy[shapely.contains_xy(region, xy[:, 0], xy[:, 1])]
        keep = rng.uniform(0.0, ceiling, size=len(xy)) < density(xy[:, 0], xy[:, 1])
        xy = xy[keep]
        chunks.append(xy)
        have += len(xy)
    return np.concatenate(chunks)[:n]


def nearest_labels(points: NDArray[np.float64], centres: NDArray[np.float64]) -> NDArray[np.intp]:
    d2 = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    labels: NDArray[np.intp] = np.argmin(d2, axis=1)
    return labels


def kmeans(
    points: NDArray[np.float64], k: int, rng: np.random.Generator, iterations: int = 25
) -> NDArray[np.float64]:
    """Lloyd's algorithm on density-weighted samples: a centroidal Voronoi seed set."""
    centres = points[rng.choice(len(points), size=k, replace=False)].copy()
    for _ in range(iterations):
        labels = nearest_labels(points, centres)
        for j in range(k):
            members = points[labels == j]
            if len(members):
                centres[j] = members.mean(axis=0)
            else:
                # An empty cluster restarts at the sample worst served by its centre.
                worst = np.argmax(((points - centres[labels]) ** 2).sum(axis=1))
                centres[j] = points[worst]
    return centres


def voronoi_cells(region: Area, seeds: NDArray[np.float64]) -> list[Area]:
    """Voronoi cells of seeds clipped to region, in seed order, each one connected if possible.

    A convex cell clipped to a concave coastline can fall apart; the stray pieces join the
    neighbouring cell they share most boundary with (or the nearest one, for islands), so cells
    stay in one piece except where the land itself is in pieces.
    """
    if len(seeds) == 1:
        return [region]
    envelope = shapely.box(*region.buffer(1000.0).bounds)
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=envelope, ordered=True)
    raw = [shapely.intersection(cell, region) for cell in shapely.get_parts(diagram)]
    keep: list[list[Polygon]] = []
    strays: list[Polygon] = []
    for cell, (x, y) in zip(raw, seeds, strict=True):
        parts = polygons_of(cell)
        if not parts:
            raise ValueError(f"seed ({x:.1f}, {y:.1f}) has an empty cell")
        # The largest piece is the cell proper; the rest wander off.
        keep.append(parts[:1])
        strays.extend(parts[1:])
    strays.sort(key=lambda p: (-p.area, p.bounds))
    for stray in strays:
        keep[_adopter(stray, keep)].append(stray)
    cells: list[Area] = []
    for parts in keep:
        merged = shapely.union_all(parts, grid_size=0.001)
        cells.append(as_area(polygons_of(merged)))
    return cells


def _adopter(stray: Polygon, cells: list[list[Polygon]]) -> int:
    edge = stray.exterior
    best_index, best_shared, best_distance = 0, 0.0, math.inf
    for index, parts in enumerate(cells):
        for part in parts:
            distance = part.distance(stray)
            shared = edge.intersection(part.buffer(0.01)).length if distance < 0.01 else 0.0
            if (shared, -distance) > (best_shared, -best_distance):
                best_index, best_shared, best_distance = index, shared, distance
    return best_index


def apportion(total: int, weights: Sequence[float], minimum: int = 1) -> list[int]:
    """Largest-remainder apportionment of total over weights, each share at least minimum."""
    if total < minimum * len(weights):
        raise ValueError(f"cannot give {len(weights)} shares at least {minimum} out of {total}")
    whole = sum(weights)
    quotas = [total * w / whole for w in weights]
    shares = [max(minimum, math.floor(q)) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - math.floor(quotas[i])), i))
    position = 0
    while sum(shares) < total:
        shares[order[position % len(order)]] += 1
        position += 1
    # Minimums can overshoot: take back from the shares that were rounded up the least.
    for i in reversed(order):
        if sum(shares) == total:
            break
        if shares[i] > minimum:
            shares[i] -= 1
    if sum(shares) != total:
        raise ValueError("apportionment did not converge")
    return shares


@dataclass(frozen=True)
class Snapped:
    """The final planar partition: faces on the 1e-6 degree grid, and which leaf owns each."""

    faces: list[Polygon]
    owner: list[int]


def snap_partition(outline: Area, leaves: Sequence[Area]) -> Snapped:
    """Rebuild leaves (in degrees) as unions of faces of one noded arrangement.

    Every leaf boundary and the outline go into a single snap-rounded noding, so two neighbours
    can only ever share the very same edges. Each face goes to the leaf containing its
    representative point; faces in gaps or overlaps left by floating point go to the leaf they
    share most boundary with.
    """
    lines = [shapely.boundary(g) for g in leaves] + [shapely.boundary(outline)]
    noded = shapely.union_all(lines, grid_size=GRID_DEG)
    polygons = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = [f for f in polygons if isinstance(f, Polygon) and f.area > 0]
    # Faces inside the outline's holes or outside it are not land.
    shapely.prepare(outline)
    faces = [f for f in faces if outline.contains(f.representative_point())]
    faces.sort(key=lambda f: f.bounds)

    tree = shapely.STRtree(list(leaves))
    owner = [-1] * len(faces)
    points = [f.representative_point() for f in faces]
    for index, point in enumerate(points):
        hits = sorted(int(i) for i in tree.query(point, predicate="within"))
        if len(hits) == 1:
            owner[index] = hits[0]
    face_tree = shapely.STRtree(faces)
    unresolved = [i for i, o in enumerate(owner) if o < 0]
    while unresolved:
        progressed = False
        for index in unresolved:
            face = faces[index]
            shared: dict[int, float] = {}
            for neighbour in face_tree.query(face, predicate="intersects"):
                other = owner[int(neighbour)]
                if other < 0 or int(neighbour) == index:
                    continue
                length = shapely.intersection(face.boundary, faces[int(neighbour)].boundary).length
                shared[other] = shared.get(other, 0.0) + length
            if shared:
                owner[index] = max(sorted(shared), key=lambda leaf: shared[leaf])
                progressed = True
        unresolved = [i for i, o in enumerate(owner) if o < 0]
        if not progressed:
            raise ValueError(f"{len(unresolved)} faces touch no assigned face")
    return Snapped(faces=faces, owner=owner)


def coverage_union(faces: Sequence[Polygon]) -> Area:
    merged = shapely.coverage_union_all(list(faces))
    return as_area(polygons_of(merged))
