"""Micro benchmark of point look-ups: ``python -m civicgrid.city.bench [N]``."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from civicgrid.city.geoindex import GeoIndex
from civicgrid.city.loader import load_city
from civicgrid.city.paths import default_config_dir


def bench_lookup(n: int, config_dir: Path | None = None, seed: int = 330383) -> float:
    """Lookups per second of GeoIndex.locate over n random points inside the city.

    Loading the city and building the index are not timed: services do that once at start.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    city = load_city(config_dir or default_config_dir())
    index = GeoIndex(city)
    rng = random.Random(seed)
    points = [index.random_point(rng) for _ in range(n)]
    started = time.perf_counter()
    for lon, lat in points:
        index.locate(lon, lat)
    elapsed = time.perf_counter() - started
    return n / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(f"GeoIndex.locate: {bench_lookup(n):,.0f} lookups/s over {n:,} points")


if __name__ == "__main__":
    main()
