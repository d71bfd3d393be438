"""A routing decision and its reasons, and the context every rule decides in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from civicgrid.city.models import Matter
from civicgrid.events.base import Actor, ActorKind, GeoPoint, IncidentEvent
from civicgrid.events.incident_events import Assigned, HandlingLevel, Jurisdiction
from civicgrid.routing.domain.city import CityMap, Place, Unit
from civicgrid.routing.domain.policy import RoutingPolicy

ROUTING = Actor(kind=ActorKind.SERVICE, id="routing")

LEVEL_ZH = {
    HandlingLevel.GRID: "网格",
    HandlingLevel.COMMUNITY: "社区",
    HandlingLevel.DEPARTMENT: "职能部门",
    HandlingLevel.SOCIAL_ORG: "社会组织",
    HandlingLevel.COMMAND_CENTRE: "社会治理中心",
}


@dataclass(frozen=True, slots=True)
class Why:
    """One reason, in English and Chinese."""

    en: str
    zh: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A trigger routing does not act on. ``code`` is short and bounded (a metric label)."""

    code: str
    reason: str


@dataclass(frozen=True)
class Decision:
    level: HandlingLevel
    lead: Unit
    supporting: tuple[Unit, ...]
    sla_class: str
    on_site: bool
    jurisdiction: Jurisdiction
    rule: str
    reasons: tuple[Why, ...]
    final_ruling: bool = False
    place: Place | None = None

    @property
    def explanation(self) -> str:
        english = " ".join(why.en for why in self.reasons)
        chinese = "".join(why.zh for why in self.reasons)
        return f"{english} / {chinese}"

    def assigned(
        self, *, cause: IncidentEvent, assignment_no: int, policy_version: int
    ) -> Assigned:
        return Assigned(
            incident_id=cause.incident_id,
            source="routing",
            actor=ROUTING,
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
            level=self.level,
            lead_unit=self.lead.ref,
            supporting_units=tuple(unit.ref for unit in self.supporting),
            sla_class=self.sla_class,
            on_site=self.on_site,
            jurisdiction=self.jurisdiction,
            rule=self.rule,
            policy_version=policy_version,
            explanation=self.explanation,
            assignment_no=assignment_no,
            final_ruling=self.final_ruling,
        )


@dataclass(frozen=True)
class Context:
    """The city and the incident's policy version: everything a rule may look at."""

    city: CityMap
    policy: RoutingPolicy

    def matter(self, code: str | None) -> Matter | None:
        matter = self.city.matter(code) if code is not None else None
        return self.policy.apply_to(matter) if matter is not None else None

    def place(self, point: GeoPoint | None) -> tuple[Place | None, Why]:
        """Where the point falls under this policy's tolerance, and how to say it."""
        if point is None:
            return None, Why("The incident has no location.", "事件没有位置信息。")
        at = f"({point.lon:.6f}, {point.lat:.6f})"
        place = self.city.locate(point.lon, point.lat)
        tolerance = self.policy.nearest_grid_tolerance_m
        if place is None:
            return None, Why(f"The point {at} is outside the city.", f"位置{at}不在本市范围内。")
        grid = self.city.unit(place.grid_id)
        grid_name = grid.name if grid else place.grid_id
        if place.how == "inside":
            return place, Why(
                f"The point {at} is inside micro-grid {place.micro_grid_id} of grid"
                f" {place.grid_id}, community {place.community_id}.",
                f"位置{at}位于{grid_name}{place.micro_grid_id}微网格内。",
            )
        if place.distance_m > tolerance:
            return None, Why(
                f"The point {at} is outside every grid, {place.distance_m:.0f} m from the"
                f" nearest (grid {place.grid_id}), beyond the {tolerance:.0f} m tolerance.",
                f"位置{at}不在任何网格内，距最近的{grid_name}{place.distance_m:.0f}米，"
                f"超出{tolerance:.0f}米容差。",
            )
        return place, Why(
            f"The point {at} is outside every grid; the nearest, grid {place.grid_id} of"
            f" community {place.community_id}, is {place.distance_m:.0f} m away, within the"
            f" {tolerance:.0f} m tolerance.",
            f"位置{at}不在任何网格内，距最近的{grid_name}{place.distance_m:.0f}米，"
            f"在{tolerance:.0f}米容差内，由该网格负责。",
        )

    def units(self, ids: Iterable[str]) -> tuple[Unit, ...]:
        found = (self.city.unit(unit_id) for unit_id in ids)
        return tuple(unit for unit in found if unit is not None)

    def decision(
        self,
        *,
        lead: Unit,
        matter: Matter | None,
        rule: str,
        reasons: Iterable[Why],
        place: Place | None = None,
        jurisdiction: Jurisdiction | None = None,
        also_supporting: Iterable[Unit] = (),
        final_ruling: bool = False,
    ) -> Decision:
        supporting: dict[str, Unit] = {}
        matter_supporting = self.units(matter.supporting_units) if matter else ()
        for unit in (*also_supporting, *matter_supporting):
            if unit.id != lead.id:
                supporting.setdefault(unit.id, unit)
        return Decision(
            level=lead.level,
            lead=lead,
            supporting=tuple(supporting.values()),
            sla_class=matter.sla_class if matter else self.city.default_sla_class,
            on_site=matter.on_site if matter else False,
            jurisdiction=jurisdiction or (place.jurisdiction if place else Jurisdiction()),
            rule=rule,
            reasons=tuple(reasons),
            final_ruling=final_ruling,
            place=place,
        )


def matter_why(matter: Matter) -> Why:
    level = HandlingLevel(matter.handling_level)
    return Why(
        f"Matter {matter.code} ({matter.name_en}) is handled at {level.value} level"
        " by the matter list.",
        f"事项「{matter.name}」按事项清单由{LEVEL_ZH[level]}办理。",
    )


def unknown_matter_why(code: str | None) -> Why:
    return Why(
        f"Category {code!r} is not in the matter list; the command centre decides who handles it.",
        f"类别「{code}」不在事项清单内，由社会治理中心研判分派。",
    )


def goes_to(unit: Unit) -> Why:
    return Why(f"Assigned to {unit.label()}.", f"派至{unit.name}。")
