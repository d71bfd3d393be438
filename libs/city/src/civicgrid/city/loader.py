"""load_city: read a configuration directory, check it as a whole, and build the City.

Every problem found is reported at once, each with its file and line or feature, so an operator
can fix a broken configuration in one pass instead of one error per restart.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from civicgrid.city.city import City
from civicgrid.city.errors import CityConfigError, Problem
from civicgrid.city.geojsonfile import CityAreas, read_city_geojson
from civicgrid.city.models import (
    CONFIGURED_KINDS,
    SOCIAL_KINDS,
    CalendarConfig,
    Matter,
    MattersFile,
    RoutingPolicy,
    SlaPolicy,
    Unit,
    UnitsFile,
)
from civicgrid.city.yamlfile import YamlDocument, read_yaml

CITY_FILE = "city.geojson"
UNITS_FILE = "units.yaml"
MATTERS_FILE = "matters.yaml"
SLA_FILE = "sla.yaml"
CALENDAR_FILE = "calendar.yaml"
ROUTING_FILE = "routing.yaml"

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# Which unit kinds may lead a matter at each handling level.
_LEAD_KINDS: dict[str, frozenset[str]] = {
    "department": frozenset({"department"}),
    "social_org": SOCIAL_KINDS,
    # At grid and community level the lead is whoever answers the whistle.
    "grid": CONFIGURED_KINDS - {"command_centre"},
    "community": CONFIGURED_KINDS - {"command_centre"},
    "command_centre": frozenset({"command_centre"}),
}


class _Problems:
    def __init__(self) -> None:
        self.found: list[Problem] = []

    def attempt(self, step: Callable[[], T]) -> T | None:
        try:
            return step()
        except CityConfigError as exc:
            self.found.extend(exc.problems)
            return None

    def validate(self, doc: YamlDocument | None, model: type[M]) -> M | None:
        return None if doc is None else self.attempt(partial(doc.validate, model))

    def raise_if_any(self) -> None:
        if self.found:
            raise CityConfigError(self.found)


def load_city(config_dir: Path | str) -> City:
    """Load and check a city configuration directory; raise CityConfigError if it is bad."""
    directory = Path(config_dir)
    problems = _Problems()
    if not directory.is_dir():
        raise CityConfigError([Problem(directory, "configuration directory does not exist")])

    areas = problems.attempt(lambda: read_city_geojson(directory / CITY_FILE))
    units_doc = problems.attempt(lambda: read_yaml(directory / UNITS_FILE))
    matters_doc = problems.attempt(lambda: read_yaml(directory / MATTERS_FILE))
    sla_doc = problems.attempt(lambda: read_yaml(directory / SLA_FILE))
    calendar_doc = problems.attempt(lambda: read_yaml(directory / CALENDAR_FILE))
    routing_doc = problems.attempt(lambda: read_yaml(directory / ROUTING_FILE))

    units = problems.validate(units_doc, UnitsFile)
    matters = problems.validate(matters_doc, MattersFile)
    sla = problems.validate(sla_doc, SlaPolicy)
    calendar = problems.validate(calendar_doc, CalendarConfig)
    routing = problems.validate(routing_doc, RoutingPolicy)
    problems.raise_if_any()
    # No problems means every step above returned a value.
    assert areas and units and matters and sla and calendar and routing
    assert units_doc and matters_doc

    found = problems.found
    found += _check_units(units_doc, units, matters, areas)
    found += _check_matters(matters_doc, matters, units, sla)
    problems.raise_if_any()

    return City(
        config_dir=directory,
        coordinate_system=areas.coordinate_system,
        communities=areas.communities,
        grids=areas.grids,
        micro_grids=areas.micro_grids,
        units=units.units,
        matter_groups=matters.groups,
        matters=matters.matters,
        sla=sla,
        calendar=calendar,
        routing=routing,
    )


def _check_units(
    doc: YamlDocument, units: UnitsFile, matters: MattersFile, areas: CityAreas
) -> list[Problem]:
    problems: list[Problem] = []
    codes = {m.code for m in matters.matters}
    area_ids = {a.id for group in (areas.communities, areas.grids) for a in group}
    first_line: dict[str, int | None] = {}
    for i, unit in enumerate(units.units):
        where = ("units", i, "id")
        if unit.id in first_line:
            problems.append(
                doc.problem(where, f"duplicate id, first on line {first_line[unit.id]}")
            )
        first_line.setdefault(unit.id, doc.line(where))
        if unit.id in area_ids:
            problems.append(doc.problem(where, "id is already a community or grid in city.geojson"))
        if unit.kind not in CONFIGURED_KINDS:
            problems.append(
                doc.problem(
                    ("units", i, "kind"),
                    f"kind {unit.kind!r} is not declared here: communities and grids come "
                    "from city.geojson",
                )
            )
        for j, code in enumerate(unit.matters):
            if code not in codes:
                reason = f"transferred matter {code!r} is not in {MATTERS_FILE}"
                problems.append(doc.problem(("units", i, "matters", j), reason))
    centres = [u.id for u in units.units if u.kind == "command_centre"]
    if len(centres) != 1:
        reason = f"there must be exactly one command_centre unit, found {len(centres)}"
        problems.append(doc.problem(("units",), reason))
    return problems


def _check_matters(
    doc: YamlDocument, matters: MattersFile, units: UnitsFile, sla: SlaPolicy
) -> list[Problem]:
    problems: list[Problem] = []
    by_id: dict[str, Unit] = {}
    for unit in units.units:
        by_id.setdefault(unit.id, unit)
    groups: dict[str, int | None] = {}
    for i, group in enumerate(matters.groups):
        where = ("groups", i, "code")
        if group.code in groups:
            problems.append(
                doc.problem(where, f"duplicate code, first on line {groups[group.code]}")
            )
        groups.setdefault(group.code, doc.line(where))
    first_line: dict[str, int | None] = {}
    for i, matter in enumerate(matters.matters):
        where = ("matters", i, "code")
        if matter.code in first_line:
            problems.append(
                doc.problem(where, f"duplicate code, first on line {first_line[matter.code]}")
            )
        first_line.setdefault(matter.code, doc.line(where))
        if matter.group not in groups:
            problems.append(doc.problem(("matters", i, "group"), f"unknown group {matter.group!r}"))
        problems += _check_matter_units(doc, i, matter, by_id)
        problems += _check_matter_sla(doc, i, matter, sla)
    return problems


def _check_matter_units(
    doc: YamlDocument, i: int, matter: Matter, units: dict[str, Unit]
) -> list[Problem]:
    problems: list[Problem] = []

    def unknown(field: str, index: int | None, unit_id: str) -> None:
        loc = ("matters", i, field) if index is None else ("matters", i, field, index)
        problems.append(
            doc.problem(loc, f"{field}: unknown unit {unit_id!r} (not in {UNITS_FILE})")
        )

    def not_transferred(field: str, index: int | None, unit: Unit) -> None:
        loc = ("matters", i, field) if index is None else ("matters", i, field, index)
        reason = (
            f"{field}: matter is not transferred to {unit.kind} {unit.id!r} "
            f"(its matters in {UNITS_FILE} do not list {matter.code!r})"
        )
        problems.append(doc.problem(loc, reason))

    if matter.lead_unit is not None:
        lead = units.get(matter.lead_unit)
        if lead is None:
            unknown("lead_unit", None, matter.lead_unit)
        elif lead.kind not in _LEAD_KINDS[matter.handling_level]:
            allowed = " or ".join(sorted(_LEAD_KINDS[matter.handling_level]))
            reason = (
                f"lead_unit: {lead.kind} {lead.id!r} cannot lead a "
                f"{matter.handling_level}-level matter (needs a {allowed})"
            )
            problems.append(doc.problem(("matters", i, "lead_unit"), reason))
        elif lead.is_social and matter.code not in lead.matters:
            not_transferred("lead_unit", None, lead)
    for field, ids in (
        ("supporting_units", matter.supporting_units),
        ("fallback_units", matter.fallback_units),
    ):
        for j, unit_id in enumerate(ids):
            unit = units.get(unit_id)
            if unit is None:
                unknown(field, j, unit_id)
            elif field == "fallback_units" and unit.is_social and matter.code not in unit.matters:
                # A fallback actually takes the matter over, so it must have been transferred.
                not_transferred(field, j, unit)
    return problems


def _check_matter_sla(doc: YamlDocument, i: int, matter: Matter, sla: SlaPolicy) -> list[Problem]:
    sla_class = sla.classes.get(matter.sla_class)
    if sla_class is None:
        known = ", ".join(sla.classes)
        reason = f"sla_class: unknown SLA class {matter.sla_class!r} (known in {SLA_FILE}: {known})"
        return [doc.problem(("matters", i, "sla_class"), reason)]
    if matter.on_site and sla_class.arrive is None:
        reason = f"on_site: SLA class {matter.sla_class!r} has no 'arrive' deadline"
        return [doc.problem(("matters", i, "on_site"), reason)]
    if not matter.on_site and sla_class.arrive is not None:
        reason = f"on_site is false but SLA class {matter.sla_class!r} has an 'arrive' deadline"
        return [doc.problem(("matters", i, "on_site"), reason)]
    return []
