"""The city as data: geography, matter list, units; loading, validation and point look-up.

from civicgrid.city import GeoIndex, default_config_dir, load_city

city = load_city(default_config_dir())
where = GeoIndex(city).locate(120.55, 27.55)
"""

from civicgrid.city.areas import Area, Community, Grid, MicroGrid
from civicgrid.city.city import City
from civicgrid.city.durations import Duration, parse_duration
from civicgrid.city.errors import CityConfigError, Problem
from civicgrid.city.geoindex import GeoIndex, Located
from civicgrid.city.loader import load_city
from civicgrid.city.models import (
    AttributeValue,
    CalendarConfig,
    EscalationLevel,
    Matter,
    MatterAttribute,
    MatterGroup,
    RoutingPolicy,
    SlaClass,
    SlaPolicy,
    Unit,
)
from civicgrid.city.paths import CONFIG_ENV, default_config_dir
from civicgrid.city.projection import LocalProjection

__all__ = [
    "CONFIG_ENV",
    "Area",
    "AttributeValue",
    "CalendarConfig",
    "City",
    "CityConfigError",
    "Community",
    "Duration",
    "EscalationLevel",
    "GeoIndex",
    "Grid",
    "LocalProjection",
    "Located",
    "Matter",
    "MatterAttribute",
    "MatterGroup",
    "MicroGrid",
    "Problem",
    "RoutingPolicy",
    "SlaClass",
    "SlaPolicy",
    "Unit",
    "default_config_dir",
    "load_city",
    "parse_duration",
]
