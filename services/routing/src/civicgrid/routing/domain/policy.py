"""A routing policy version: the knobs of routing.yaml plus per-matter overrides.

Versions are immutable once published; an incident decides with the version of its first
assignment for the rest of its life, so changing the rules never changes an incident in flight.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from civicgrid.city.models import HandlingLevel as CityHandlingLevel
from civicgrid.city.models import Matter
from civicgrid.city.models import RoutingPolicy as RoutingFile

MAX_TOLERANCE_M = 10_000.0
"""How far the city map looks for a grid near a point outside every grid."""


class MatterOverride(BaseModel):
    """Who handles one matter from this version on, replacing what matters.yaml says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    handling_level: CityHandlingLevel | None = None
    lead_unit: str | None = None
    supporting_units: tuple[str, ...] | None = None
    fallback_units: tuple[str, ...] | None = None
    sla_class: str | None = None


class RoutingPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    policy_version: int = Field(ge=1)
    max_returns_before_final_ruling: int = Field(ge=1)
    """After this many returns the command centre makes the final ruling."""
    nearest_grid_tolerance_m: float = Field(ge=0, le=MAX_TOLERANCE_M)
    """A point outside every grid goes to the nearest one if it is at most this far away."""
    matter_overrides: Mapping[str, MatterOverride] = Field(default_factory=dict)
    note: str = Field(default="", max_length=2000)
    """What changed in this version and why, for the people reading the history."""

    @classmethod
    def from_routing_file(cls, routing: RoutingFile) -> RoutingPolicy:
        return cls(
            policy_version=routing.policy_version,
            max_returns_before_final_ruling=routing.max_returns_before_final_ruling,
            nearest_grid_tolerance_m=routing.nearest_grid_tolerance_m,
            note="from routing.yaml",
        )

    def apply_to(self, matter: Matter) -> Matter:
        override = self.matter_overrides.get(matter.code)
        if override is None:
            return matter
        changes = override.model_dump(exclude_none=True)
        return matter.model_copy(update=changes)
