"""Moves that are not returns: the whistle, a reopened incident, the command centre's order."""

from __future__ import annotations

from civicgrid.city.models import Matter
from civicgrid.events.base import UnitKind
from civicgrid.events.incident_events import Escalated, HandlingLevel, Reassigned, Reopened
from civicgrid.routing.domain.city import Place, Unit
from civicgrid.routing.domain.decision import Context, Decision, Ignored, Why, goes_to
from civicgrid.routing.domain.routing import reroute_without
from civicgrid.routing.domain.state import RoutingState


def move_up(ctx: Context, state: RoutingState, escalated: Escalated) -> Decision | Ignored:
    """吹哨: one level up the ladder grid -> community -> department -> command centre."""
    if not escalated.request_reassignment:
        return Ignored("no_reassignment_requested", "escalation without the whistle")
    if state.current is None or state.closed:
        return Ignored("not_open" if state.closed else "not_assigned", "nothing to move up")
    current = state.current
    level = current.level
    if level is HandlingLevel.COMMAND_CENTRE:
        return Ignored("at_the_top", "already at the command centre: nothing above it")
    matter = ctx.matter(state.category)
    blown = Why(
        f"Escalation {escalated.ladder_name!r} (clock {escalated.clock}, level"
        f" {escalated.ladder_level}) blew the whistle: {escalated.reason}."
        f" Moving up from {level.value} {current.lead_unit.id}, which keeps supporting.",
        f"{escalated.ladder_name}吹哨（{escalated.clock}时限第{escalated.ladder_level}级）："
        f"{escalated.reason}。由{current.lead_unit.name or current.lead_unit.id}上移一级，"
        "原承办单位协同。",
    )
    previous = ctx.city.unit(current.lead_unit.id)
    supporting = (previous,) if previous is not None else ()
    target, rule = ctx.city.command_centre, "whistle.to_command_centre"
    rungs = _ladder_above(ctx, level, current.jurisdiction.community_id, matter, state.excluded)
    for candidate, step in rungs:
        if candidate is not None and candidate.id not in state.excluded:
            target, rule = candidate, step
            break
    return ctx.decision(
        lead=target,
        matter=matter,
        rule=rule,
        reasons=(blown, goes_to(target)),
        jurisdiction=current.jurisdiction,
        also_supporting=supporting,
        final_ruling=state.final_ruling,
    )


def _ladder_above(
    ctx: Context,
    level: HandlingLevel,
    community_id: str | None,
    matter: Matter | None,
    excluded: frozenset[str],
) -> list[tuple[Unit | None, str]]:
    """The rungs above ``level``, nearest first; the command centre is the last resort."""
    rungs: list[tuple[Unit | None, str]] = []
    if level is HandlingLevel.GRID and community_id:
        rungs.append((ctx.city.unit(community_id), "whistle.to_community"))
    if level in (HandlingLevel.GRID, HandlingLevel.COMMUNITY) and matter is not None:
        answering = _answers_the_whistle(ctx, matter, excluded)
        if answering is not None:
            rungs.append((answering, f"whistle.to_{answering.level.value}"))
    return rungs


def _answers_the_whistle(ctx: Context, matter: Matter, excluded: frozenset[str]) -> Unit | None:
    """Who answers a community's whistle: the matter's lead unit (the matter list names it
    for grid and community matters for exactly this), else a department among its others."""
    lead = ctx.city.unit(matter.lead_unit) if matter.lead_unit else None
    if lead is not None and lead.id not in excluded and lead.level not in _AREA_LEVELS:
        return lead
    for unit in ctx.units((*matter.supporting_units, *matter.fallback_units)):
        if unit.kind is UnitKind.DEPARTMENT and unit.id not in excluded:
            return unit
    return None


_AREA_LEVELS = (HandlingLevel.GRID, HandlingLevel.COMMUNITY, HandlingLevel.COMMAND_CENTRE)


def route_reopened(ctx: Context, state: RoutingState, reopened: Reopened) -> Decision | Ignored:
    """Back to the unit that had it, unless that unit no longer exists (or has returned it)."""
    why = Why(f"Reopened: {reopened.reason}.", f"事件重新打开：{reopened.reason}。")
    current = state.current
    matter = ctx.matter(state.category)
    if current is None:
        return Ignored("not_assigned", "reopened before any assignment")
    same = ctx.city.unit(current.lead_unit.id)
    if same is not None and same.id not in state.excluded:
        return ctx.decision(
            lead=same,
            matter=matter,
            rule="reopen.same_unit",
            reasons=(
                why,
                Why(
                    "It goes back to the unit that handled it, which knows the case.",
                    "退回原承办单位继续办理。",
                ),
                goes_to(same),
            ),
            jurisdiction=current.jurisdiction,
            also_supporting=ctx.units(unit.id for unit in current.supporting_units),
            final_ruling=state.final_ruling,
        )
    place, where = ctx.place(state.location)
    gone = Why(
        f"The previous unit {current.lead_unit.id} is no longer in the city configuration.",
        f"原承办单位{current.lead_unit.name or current.lead_unit.id}已不在本市配置中。",
    )
    return reroute_without(
        ctx,
        matter=matter,
        category=state.category,
        place=place,
        excluded=state.excluded,
        rule_prefix="reopen.reroute",
        reasons=(why, gone, where),
        final_ruling=state.final_ruling,
    )


def follow_order(ctx: Context, state: RoutingState, order: Reassigned) -> Decision | Ignored:
    """The command centre's order: a named unit, a level, or simply "route it again"."""
    if state.closed:
        return Ignored("not_open", "reassignment of a closed incident")
    ordered = Why(
        f"The command centre ordered a reassignment: {order.reason}.",
        f"社会治理中心指令改派：{order.reason}。",
    )
    matter = ctx.matter(state.category)
    place, where = ctx.place(state.location)
    centre = ctx.city.command_centre
    if order.to_unit is not None:
        unit = ctx.city.unit(order.to_unit.id)
        if unit is None:
            return ctx.decision(
                lead=centre,
                matter=matter,
                rule="reassigned.unknown_unit",
                reasons=(
                    ordered,
                    Why(
                        f"Unit {order.to_unit.id!r} is not in the city configuration;"
                        " back to the command centre.",
                        f"单位「{order.to_unit.id}」不在本市配置中，退回社会治理中心。",
                    ),
                ),
                place=place,
                final_ruling=state.final_ruling,
            )
        return ctx.decision(
            lead=unit,
            matter=matter,
            rule="reassigned.to_unit",
            reasons=(ordered, goes_to(unit)),
            place=_place_of_area(ctx, unit) or place,
            final_ruling=state.final_ruling,
        )
    if order.to_level is not None:
        target = _unit_at_level(ctx, order.to_level, matter, place)
        rule = "reassigned.to_level" if target is not None else "reassigned.no_unit_at_level"
        lead = target or centre
        return ctx.decision(
            lead=lead,
            matter=matter,
            rule=rule,
            reasons=(ordered, where, goes_to(lead)),
            place=place,
            final_ruling=state.final_ruling,
        )
    return reroute_without(
        ctx,
        matter=matter,
        category=state.category,
        place=place,
        excluded=state.excluded,
        rule_prefix="reassigned.reroute",
        reasons=(ordered, where),
        final_ruling=state.final_ruling,
    )


def _place_of_area(ctx: Context, unit: Unit) -> Place | None:
    if unit.kind is UnitKind.GRID and unit.community_id:
        return Place(unit.id, unit.community_id, None, "inside")
    return None


def _unit_at_level(
    ctx: Context, level: HandlingLevel, matter: Matter | None, place: Place | None
) -> Unit | None:
    """The unit of a level for this incident; the order overrides earlier returns."""
    if level is HandlingLevel.COMMAND_CENTRE:
        return ctx.city.command_centre
    if level is HandlingLevel.GRID:
        return ctx.city.unit(place.grid_id) if place else None
    if level is HandlingLevel.COMMUNITY:
        return ctx.city.unit(place.community_id) if place else None
    if matter is None:
        return None
    ids = (matter.lead_unit, *matter.supporting_units, *matter.fallback_units)
    for unit in ctx.units(unit_id for unit_id in ids if unit_id):
        if unit.level is level:
            return unit
    return None
