"""Returns (退单): route again without the returning unit, until the final ruling."""

from __future__ import annotations

from civicgrid.city.models import Matter
from civicgrid.events.incident_events import HandlingLevel, Returned, ReturnReason
from civicgrid.routing.domain.city import AreaKind, Place, Unit
from civicgrid.routing.domain.decision import Context, Decision, Ignored, Why, goes_to
from civicgrid.routing.domain.routing import reroute_without
from civicgrid.routing.domain.state import RoutingState, evolve

REASON_ZH = {
    ReturnReason.WRONG_JURISDICTION: "非本辖区",
    ReturnReason.NOT_OUR_DUTY: "非本单位职责",
    ReturnReason.UNCLEAR_OWNERSHIP: "权属不清",
    ReturnReason.INSUFFICIENT_INFORMATION: "信息不全",
    ReturnReason.OTHER: "其他原因",
}

_TO_COMMAND_CENTRE = {
    ReturnReason.UNCLEAR_OWNERSHIP: Why(
        "Ownership is unclear: the command centre decides who owns it.",
        "权属不清，由社会治理中心协调认定。",
    ),
    ReturnReason.INSUFFICIENT_INFORMATION: Why(
        "The information is insufficient: the command centre completes it with the reporter"
        " and dispatches again.",
        "信息不全，由社会治理中心补充核实后再派。",
    ),
}


def after_return(ctx: Context, state: RoutingState, returned: Returned) -> Decision | Ignored:
    refused = state.refuses_return(returned)
    if refused is not None:
        return Ignored(refused, f"return by {returned.unit.id} not acted on: {refused}")
    assert state.current is not None
    after = evolve(state, returned)
    reason = returned.reason_code
    returned_why = Why(
        f"{returned.unit.id} returned assignment {state.current.assignment_no}"
        f" ({reason.value}); return {after.returns} of"
        f" {ctx.policy.max_returns_before_final_ruling} before the final ruling.",
        f"{returned.unit.name or returned.unit.id}以「{REASON_ZH[reason]}」退单"
        f"（第{after.returns}次，上限{ctx.policy.max_returns_before_final_ruling}次）。",
    )
    matter = ctx.matter(after.category)
    place, where = ctx.place(after.location)
    centre = ctx.city.command_centre
    jurisdiction = place.jurisdiction if place else state.current.jurisdiction
    if after.returns >= ctx.policy.max_returns_before_final_ruling:
        return ctx.decision(
            lead=centre,
            matter=matter,
            rule="return.final_ruling",
            reasons=(
                returned_why,
                Why(
                    "The command centre makes the final ruling; it cannot be returned.",
                    "由社会治理中心作最终裁定，不得再退单。",
                ),
            ),
            jurisdiction=jurisdiction,
            final_ruling=True,
        )
    if returned.corrected_category and returned.corrected_category != state.category:
        corrected = Why(
            f"The category was corrected to {returned.corrected_category}.",
            f"类别更正为「{returned.corrected_category}」。",
        )
        return reroute_without(
            ctx,
            matter=matter,
            category=after.category,
            place=place,
            excluded=after.excluded,
            rule_prefix="return.corrected_category",
            reasons=(returned_why, corrected, where),
        )
    if reason in _TO_COMMAND_CENTRE:
        return ctx.decision(
            lead=centre,
            matter=matter,
            rule=f"return.{reason.value}",
            reasons=(returned_why, _TO_COMMAND_CENTRE[reason]),
            jurisdiction=jurisdiction,
        )
    level = state.current.level
    geographic = level in (HandlingLevel.GRID, HandlingLevel.COMMUNITY)
    if reason is ReturnReason.WRONG_JURISDICTION and geographic:
        return _wrong_jurisdiction(ctx, after, returned, matter, returned_why, level)
    if reason in (ReturnReason.WRONG_JURISDICTION, ReturnReason.NOT_OUR_DUTY):
        return _next_fallback(ctx, after, matter, place, returned_why)
    return reroute_without(
        ctx,
        matter=matter,
        category=after.category,
        place=place,
        excluded=after.excluded,
        rule_prefix="return.other",
        reasons=(returned_why, where),
    )


def _next_fallback(
    ctx: Context,
    after: RoutingState,
    matter: Matter | None,
    place: Place | None,
    returned_why: Why,
) -> Decision:
    """Not our duty: the matter's next fallback unit that has not returned it."""
    fallbacks = ctx.units(matter.fallback_units) if matter else ()
    for unit in fallbacks:
        if unit.id not in after.excluded:
            return ctx.decision(
                lead=unit,
                matter=matter,
                rule="return.not_our_duty.fallback_unit",
                reasons=(
                    returned_why,
                    Why(
                        "Next candidate from the matter's fallback units.",
                        "按事项清单的备选单位顺延。",
                    ),
                    goes_to(unit),
                ),
                place=place,
            )
    return ctx.decision(
        lead=ctx.city.command_centre,
        matter=matter,
        rule="return.not_our_duty.command_centre",
        reasons=(
            returned_why,
            Why(
                "No fallback unit is left: the command centre decides.",
                "已无备选单位，由社会治理中心研判分派。",
            ),
        ),
        place=place,
    )


def _wrong_jurisdiction(
    ctx: Context,
    after: RoutingState,
    returned: Returned,
    matter: Matter | None,
    returned_why: Why,
    level: HandlingLevel,
) -> Decision:
    """A grid or community says the place is not theirs: look again, then go one level up."""
    kind: AreaKind = "grid" if level is HandlingLevel.GRID else "community"
    reasons: list[Why] = [returned_why]
    place, where = ctx.place(after.location)
    reasons.append(where)
    if returned.corrected_location is not None:
        if place is None:
            return ctx.decision(
                lead=ctx.city.command_centre,
                matter=matter,
                rule="return.wrong_jurisdiction.outside_city",
                reasons=(*reasons, Why("The command centre decides.", "由社会治理中心研判。")),
            )
        unit = _area_unit(ctx, kind, place)
        if unit is not None and unit.id not in after.excluded:
            return ctx.decision(
                lead=unit,
                matter=matter,
                rule="return.wrong_jurisdiction.corrected_location",
                reasons=(*reasons, goes_to(unit)),
                place=place,
            )
        reasons.append(
            Why(
                "The corrected location is still in a unit that returned it.",
                "更正后的位置仍在已退单单位的辖区内。",
            )
        )
    point = after.location
    tolerance = ctx.policy.nearest_grid_tolerance_m
    if point is not None:
        other = ctx.city.nearest_other(
            kind, point.lon, point.lat, excluding=after.excluded, within_m=tolerance
        )
        neighbour = _area_unit(ctx, kind, other) if other else None
        if other is not None and neighbour is not None:
            return ctx.decision(
                lead=neighbour,
                matter=matter,
                rule=f"return.wrong_jurisdiction.nearest_other_{kind}",
                reasons=(
                    *reasons,
                    Why(
                        f"The nearest other {kind} is {other.distance_m:.0f} m from the point,"
                        f" within the {tolerance:.0f} m tolerance.",
                        f"相邻的{neighbour.name}距该位置{other.distance_m:.0f}米，"
                        f"在{tolerance:.0f}米容差内。",
                    ),
                    goes_to(neighbour),
                ),
                place=other if kind == "grid" else place,
            )
    community = ctx.city.unit(place.community_id) if place else None
    if kind == "grid" and community is not None and community.id not in after.excluded:
        return ctx.decision(
            lead=community,
            matter=matter,
            rule="return.wrong_jurisdiction.community",
            reasons=(
                *reasons,
                Why(
                    f"No other grid within {tolerance:.0f} m: the community sorts out its grids.",
                    f"{tolerance:.0f}米内无其他网格，由所属社区协调。",
                ),
                goes_to(community),
            ),
            place=place,
        )
    return ctx.decision(
        lead=ctx.city.command_centre,
        matter=matter,
        rule="return.wrong_jurisdiction.command_centre",
        reasons=(
            *reasons,
            Why(
                "No other area within reach: the command centre decides.",
                "附近无其他辖区，由社会治理中心研判分派。",
            ),
        ),
        place=place,
    )


def _area_unit(ctx: Context, kind: AreaKind, place: Place) -> Unit | None:
    return ctx.city.unit(place.grid_id if kind == "grid" else place.community_id)
