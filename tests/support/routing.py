"""Fakes and builders for routing's tests (and anyone testing against routing's decisions).

``FakeCity`` is three 1 km grids in a row, two communities, a few departments and
organisations, and one matter per handling level: small enough to reason about distances.

    lon 120.50      120.51      120.52      120.53
         | c01-g001  | c01-g002  | c02-g001  |   lat 27.50 .. 27.51
         |---- community c01 ----|--- c02 ---|   micro-grids: m01 south, m02 north of 27.505
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from civicgrid.city.models import Matter
from civicgrid.events.base import Actor, ActorKind, GeoPoint, IncidentEvent, UnitKind, UnitRef
from civicgrid.events.ids import new_incident_id
from civicgrid.events.incident_events import (
    Assigned,
    Channel,
    Closed,
    Escalated,
    HandlingLevel,
    Reassigned,
    Reopened,
    ReportDetails,
    Reported,
    Returned,
    ReturnReason,
)
from civicgrid.events.store import (
    EventStore,
)
from civicgrid.routing.config import RoutingConfig
from civicgrid.routing.domain.city import AreaKind, Place, Unit
from civicgrid.routing.domain.decide import plan_routing
from civicgrid.routing.domain.policy import RoutingPolicy
from civicgrid.servicekit.service import Service
from tests.support.events.waiting import eventually

_M_PER_DEG_LAT = 111_195.0
_M_PER_DEG_LON = _M_PER_DEG_LAT * math.cos(math.radians(27.505))
SOUTH, NORTH, WEST = 27.50, 27.51, 120.50
GRID_WIDTH_DEG = 0.01

GRIDS: Mapping[str, tuple[str, float]] = {
    # grid id -> (community id, western longitude)
    "c01-g001": ("c01", 120.50),
    "c01-g002": ("c01", 120.51),
    "c02-g001": ("c02", 120.52),
}

STREET_VENDING = "city-appearance.street-vending"  # grid
NEIGHBOUR_DISPUTE = "neighbourhood.neighbour-dispute"  # community, whistle -> soc-mediation
ILLEGAL_PARKING = "city-appearance.illegal-parking"  # department, fallback dept-police
OVERFLOWING_BINS = "city-appearance.overflowing-bins"  # social_org (enterprise)
CROSS_DEPARTMENT = "public-services.cross-department"  # command_centre

POLICY_V1 = RoutingPolicy(
    policy_version=1, max_returns_before_final_ruling=3, nearest_grid_tolerance_m=500
)


def _matter(code: str, level: str, **fields: Any) -> Matter:
    group = code.split(".")[0]
    defaults: dict[str, Any] = {
        "code": code,
        "name": f"{code}（中文）",
        "name_en": code.split(".")[1].replace("-", " "),
        "group": group,
        "keywords": (code,),
        "handling_level": level,
        "on_site": False,
        "sla_class": "standard",
        "duplicate_radius_m": 0,
        "duplicate_window_minutes": 0,
    }
    defaults.update(fields)
    return Matter(**defaults)


MATTERS: Mapping[str, Matter] = {
    m.code: m
    for m in (
        _matter(
            STREET_VENDING,
            "grid",
            lead_unit="dept-urban-mgmt",
            supporting_units=("dept-market",),
            fallback_units=("dept-market",),
            on_site=True,
            sla_class="on_site",
        ),
        _matter(NEIGHBOUR_DISPUTE, "community", lead_unit="soc-mediation"),
        _matter(
            ILLEGAL_PARKING,
            "department",
            lead_unit="dept-urban-mgmt",
            supporting_units=("dept-transport",),
            fallback_units=("dept-police", "dept-transport"),
            on_site=True,
            sla_class="on_site",
        ),
        _matter(
            OVERFLOWING_BINS,
            "social_org",
            lead_unit="ent-sanitation",
            fallback_units=("dept-urban-mgmt",),
        ),
        _matter(CROSS_DEPARTMENT, "command_centre", sla_class="difficult"),
    )
}

_CONFIGURED_UNITS = (
    Unit("command-centre", UnitKind.COMMAND_CENTRE, "社会治理中心", "Command centre"),
    Unit("dept-urban-mgmt", UnitKind.DEPARTMENT, "综合行政执法局", "Urban management"),
    Unit("dept-market", UnitKind.DEPARTMENT, "市场监督管理局", "Market supervision"),
    Unit("dept-police", UnitKind.DEPARTMENT, "公安局", "Public security"),
    Unit("dept-transport", UnitKind.DEPARTMENT, "交通运输局", "Transport"),
    Unit("soc-mediation", UnitKind.SOCIAL_ORG, "人民调解协会", "Mediation association"),
    Unit("ent-sanitation", UnitKind.ENTERPRISE, "环卫公司", "Sanitation company"),
)


def centre_of(grid_id: str, *, north: bool = False) -> GeoPoint:
    """A point well inside the grid's southern (m01) or northern (m02) micro-grid."""
    west = GRIDS[grid_id][1]
    return GeoPoint(lon=west + GRID_WIDTH_DEG / 2, lat=27.5075 if north else 27.5025)


def metres_east_of_city(metres: float) -> GeoPoint:
    return GeoPoint(lon=120.53 + metres / _M_PER_DEG_LON, lat=27.505)


@dataclass
class FakeCity:
    matters: dict[str, Matter] = field(default_factory=lambda: dict(MATTERS))
    units: dict[str, Unit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.units:
            self.units = {unit.id: unit for unit in _CONFIGURED_UNITS}
            for grid_id, (community_id, _) in GRIDS.items():
                self.units[grid_id] = Unit(
                    grid_id, UnitKind.GRID, f"{grid_id}网格", f"Grid {grid_id}", community_id
                )
            for community_id in ("c01", "c02"):
                self.units[community_id] = Unit(
                    community_id,
                    UnitKind.COMMUNITY,
                    f"{community_id}社区",
                    f"Community {community_id}",
                )

    @property
    def command_centre(self) -> Unit:
        return self.units["command-centre"]

    @property
    def default_sla_class(self) -> str:
        return "standard"

    @property
    def sla_classes(self) -> frozenset[str]:
        return frozenset({"standard", "on_site", "urgent", "difficult"})

    def matter(self, code: str) -> Matter | None:
        return self.matters.get(code)

    def unit(self, unit_id: str) -> Unit | None:
        return self.units.get(unit_id)

    def locate(self, lon: float, lat: float) -> Place | None:
        distances = sorted((_distance_to_grid(grid_id, lon, lat), grid_id) for grid_id in GRIDS)
        distance, grid_id = distances[0]
        micro = f"{grid_id}-m{'02' if lat > 27.505 else '01'}"
        how: Literal["inside", "nearest"] = "inside" if distance == 0 else "nearest"
        return Place(grid_id, GRIDS[grid_id][0], micro, how, distance)

    def nearest_other(
        self, kind: AreaKind, lon: float, lat: float, *, excluding: frozenset[str], within_m: float
    ) -> Place | None:
        found = sorted(
            (_distance_to_grid(grid_id, lon, lat), grid_id)
            for grid_id, (community_id, _) in GRIDS.items()
            if (grid_id if kind == "grid" else community_id) not in excluding
        )
        if not found or found[0][0] > within_m:
            return None
        distance, grid_id = found[0]
        return Place(grid_id, GRIDS[grid_id][0], None, "nearest", distance)


def _distance_to_grid(grid_id: str, lon: float, lat: float) -> float:
    west = GRIDS[grid_id][1]
    dx = max(west - lon, 0.0, lon - (west + GRID_WIDTH_DEG)) * _M_PER_DEG_LON
    dy = max(SOUTH - lat, 0.0, lat - NORTH) * _M_PER_DEG_LAT
    return math.hypot(dx, dy)


# Event builders: a valid event with only what the test cares about.

INTAKE = Actor(kind=ActorKind.SERVICE, id="intake")


def _envelope(incident_id: str, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "incident_id": incident_id,
        "source": "tests",
        "actor": INTAKE,
        "correlation_id": f"corr-{incident_id}",
    }
    fields.update(overrides)
    return fields


def reported_at(
    point: GeoPoint, category: str = STREET_VENDING, incident_id: str | None = None
) -> Reported:
    report = ReportDetails(channel=Channel.CITIZEN_APP, category=category, location=point)
    return Reported(**_envelope(incident_id or new_incident_id()), report=report)


def returned_by(unit: UnitRef, incident_id: str, reason: ReturnReason, **fields: Any) -> Returned:
    return Returned(**_envelope(incident_id), unit=unit, reason_code=reason, **fields)


def whistle(incident_id: str, *, request_reassignment: bool = True) -> Escalated:
    return Escalated(
        **_envelope(incident_id, actor=Actor(kind=ActorKind.SERVICE, id="sla")),
        clock="resolve",
        ladder_level=2,
        ladder_name="community head",
        request_reassignment=request_reassignment,
        reason="resolve deadline breached by 2 h",
    )


def reopened(incident_id: str) -> Reopened:
    return Reopened(**_envelope(incident_id), reason="the citizen says it is back")


def closed(incident_id: str) -> Closed:
    return Closed(**_envelope(incident_id), reason="resolved")


def reassigned(
    incident_id: str,
    *,
    to_unit: UnitRef | None = None,
    to_level: HandlingLevel | None = None,
) -> Reassigned:
    return Reassigned(
        **_envelope(incident_id),
        reason="ordered by the duty officer",
        to_unit=to_unit,
        to_level=to_level,
    )


@dataclass
class IncidentScript:
    """One incident's history, routed the way the handler does it, without a bus."""

    city: FakeCity
    policy: RoutingPolicy = POLICY_V1
    events: list[IncidentEvent] = field(default_factory=list)

    @property
    def incident_id(self) -> str:
        return self.events[0].incident_id

    @property
    def assignments(self) -> list[Assigned]:
        return [event for event in self.events if isinstance(event, Assigned)]

    @property
    def current(self) -> Assigned:
        return self.assignments[-1]

    def happen(self, event: IncidentEvent) -> list[Assigned]:
        """Append the event and route through it; returns the assignments it caused."""
        self.events.append(event)
        plan = plan_routing(self.events, event.event_id, self.city, self.policy)
        self.events.extend(plan.assignments)
        return plan.assignments


StartRouting = Callable[[], Awaitable[Service]]
"""A test fixture's way to start one more routing replica."""


class Incidents:
    """Writing an incident's events the way intake and sla do, and reading what routing wrote."""

    def __init__(self, store: EventStore, config: RoutingConfig) -> None:
        self.store = store
        self.city = config.city
        self.rng = random.Random(20261122)

    def matter_at(self, level: str) -> str:
        return next(m.code for m in self.city.city.matters if m.handling_level == level)

    def point_in(self, area_id: str) -> GeoPoint:
        lon, lat = self.city.index.random_point_in(area_id, self.rng)
        return GeoPoint(lon=lon, lat=lat)

    async def append(self, event: IncidentEvent) -> None:
        # Unconditional, like an independent writer: routing must cope with any interleaving.
        await self.store.append(event, msg_id=event.event_id, expected_version=None)

    async def report(self, category: str, point: GeoPoint) -> Reported:
        event = reported_at(point, category)
        await self.append(event)
        return event

    async def assignments(self, incident_id: str) -> list[Assigned]:
        return [e for e in await self.store.load(incident_id) if isinstance(e, Assigned)]

    async def wait_for(
        self, incident_id: str, count: int, within_s: float = 10.0
    ) -> list[Assigned]:
        async def probe() -> list[Assigned] | None:
            found = await self.assignments(incident_id)
            return found if len(found) >= count else None

        return await eventually(probe, within_s=within_s, what=f"{count} assignment(s)")
