"""Routing a report by its matter's handling level, and routing again without some units.

``route_new_report`` is the one decision for a new incident: the consumer and the explain
endpoint both call it.
"""

from __future__ import annotations

from collections.abc import Iterator

from civicgrid.city.models import Matter
from civicgrid.events.base import GeoPoint
from civicgrid.events.incident_events import HandlingLevel
from civicgrid.routing.domain.city import Place, Unit
from civicgrid.routing.domain.decision import (
    Context,
    Decision,
    Why,
    goes_to,
    matter_why,
    unknown_matter_why,
)

_FIRST_RULE = {
    HandlingLevel.DEPARTMENT: "department.matter_list",
    HandlingLevel.SOCIAL_ORG: "social_org.transferred_matter",
}


def route_new_report(ctx: Context, category: str, point: GeoPoint | None) -> Decision:
    place, where = ctx.place(point)
    centre = ctx.city.command_centre
    matter = ctx.matter(category)
    if matter is None:
        return ctx.decision(
            lead=centre,
            matter=None,
            rule="command_centre.unknown_category",
            reasons=(unknown_matter_why(category), where),
            place=place,
        )
    level = HandlingLevel(matter.handling_level)
    if level is HandlingLevel.COMMAND_CENTRE:
        return ctx.decision(
            lead=centre,
            matter=matter,
            rule="command_centre.matter_list",
            reasons=(matter_why(matter), where, goes_to(centre)),
            place=place,
        )
    if place is None:
        return ctx.decision(
            lead=centre,
            matter=matter,
            rule="command_centre.outside_city",
            reasons=(
                matter_why(matter),
                where,
                Why("The command centre decides who handles it.", "由社会治理中心研判分派。"),
            ),
        )
    if level in (HandlingLevel.GRID, HandlingLevel.COMMUNITY):
        area_id = place.grid_id if level is HandlingLevel.GRID else place.community_id
        lead = ctx.city.unit(area_id)
        rule = f"{level.value}.{place.how}"
    else:
        lead = ctx.city.unit(matter.lead_unit) if matter.lead_unit else None
        rule = _FIRST_RULE[level]
    if lead is None:
        return _unknown_unit(ctx, matter, place, where)
    return ctx.decision(
        lead=lead,
        matter=matter,
        rule=rule,
        reasons=(matter_why(matter), where, goes_to(lead)),
        place=place,
    )


def _unknown_unit(ctx: Context, matter: Matter, place: Place, where: Why) -> Decision:
    missing = matter.lead_unit or place.grid_id
    return ctx.decision(
        lead=ctx.city.command_centre,
        matter=matter,
        rule="command_centre.unknown_unit",
        reasons=(
            matter_why(matter),
            where,
            Why(
                f"Unit {missing!r} is not in the city configuration; the command centre decides.",
                f"单位「{missing}」不在本市配置中，由社会治理中心研判分派。",
            ),
        ),
        place=place,
    )


def candidates(ctx: Context, matter: Matter, place: Place | None) -> Iterator[tuple[str, Unit]]:
    """Who could take the matter, in order: the area's units, the lead, the fallbacks.

    Each comes with the step's name, which becomes the last part of the rule.
    """
    level = HandlingLevel(matter.handling_level)
    if place is not None and level is HandlingLevel.GRID:
        yield from _known(ctx, "grid", place.grid_id)
    if place is not None and level in (HandlingLevel.GRID, HandlingLevel.COMMUNITY):
        yield from _known(ctx, "community", place.community_id)
    if level in (HandlingLevel.DEPARTMENT, HandlingLevel.SOCIAL_ORG) and matter.lead_unit:
        yield from _known(ctx, "lead_unit", matter.lead_unit)
    for unit_id in matter.fallback_units:
        yield from _known(ctx, "fallback_unit", unit_id)


def _known(ctx: Context, step: str, unit_id: str) -> Iterator[tuple[str, Unit]]:
    unit = ctx.city.unit(unit_id)
    if unit is not None:
        yield step, unit


def reroute_without(
    ctx: Context,
    *,
    matter: Matter | None,
    category: str | None,
    place: Place | None,
    excluded: frozenset[str],
    rule_prefix: str,
    reasons: tuple[Why, ...],
    final_ruling: bool = False,
) -> Decision:
    """The first candidate that has not returned the incident; the command centre at the end."""
    centre = ctx.city.command_centre
    if matter is None:
        return ctx.decision(
            lead=centre,
            matter=None,
            rule=f"{rule_prefix}.command_centre",
            reasons=(*reasons, unknown_matter_why(category)),
            place=place,
            final_ruling=final_ruling,
        )
    skipped: list[Unit] = []
    for step, unit in candidates(ctx, matter, place):
        if unit.id in excluded:
            skipped.append(unit)
            continue
        return ctx.decision(
            lead=unit,
            matter=matter,
            rule=f"{rule_prefix}.{step}",
            reasons=(*reasons, *_skipping(skipped), goes_to(unit)),
            place=place,
            final_ruling=final_ruling,
        )
    return ctx.decision(
        lead=centre,
        matter=matter,
        rule=f"{rule_prefix}.command_centre",
        reasons=(
            *reasons,
            *_skipping(skipped),
            Why(
                "No other candidate unit is left; the command centre decides.",
                "已无其他候选单位，由社会治理中心研判分派。",
            ),
        ),
        place=place,
        final_ruling=final_ruling,
    )


def _skipping(units: list[Unit]) -> tuple[Why, ...]:
    if not units:
        return ()
    ids = ", ".join(unit.id for unit in units)
    names = "、".join(unit.name for unit in units)
    return (Why(f"Skipping {ids}, which returned it before.", f"跳过已退单的{names}。"),)
