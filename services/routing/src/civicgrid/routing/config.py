"""Routing's configuration: the city (matter list, units, areas) and the configured policy.

A bad city configuration fails here, at start, with the file and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from civicgrid.city import default_config_dir, load_city
from civicgrid.routing.city_map import CityMapAdapter
from civicgrid.routing.domain.policy import RoutingPolicy


@dataclass(frozen=True)
class RoutingConfig:
    city: CityMapAdapter
    configured_policy: RoutingPolicy
    """routing.yaml: seeded into the policy bucket when it is empty."""


def load_city_map(config_dir: Path | None) -> CityMapAdapter:
    return CityMapAdapter(load_city(config_dir or default_config_dir()))


def load_routing_config(config_dir: Path | None) -> RoutingConfig:
    city = load_city_map(config_dir)
    return RoutingConfig(city, RoutingPolicy.from_routing_file(city.city.routing))
