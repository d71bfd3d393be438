"""An incident as routing sees it: a fold over its events."""

from __future__ import annotations

from dataclasses import dataclass, replace

from civicgrid.events.base import GeoPoint, IncidentEvent, UnitKind, UnitRef
from civicgrid.events.incident_events import (
    Assigned,
    Closed,
    Reopened,
    Reported,
    Returned,
)


@dataclass(frozen=True, slots=True)
class RoutingState:
    incident_id: str
    category: str | None = None
    location: GeoPoint | None = None
    current: Assigned | None = None
    returns: int = 0
    """Returns routing acted on (stale returns and returns after a final ruling do not count)."""
    excluded: frozenset[str] = frozenset()
    """Units that returned the incident: routing does not send it back to them. Never the
    command centre, the last resort that rules when nobody else will take it."""
    policy_version: int | None = None
    """The version of the first assignment; every later decision uses it."""
    final_ruling: bool = False
    """Once the command centre has ruled, no assignment of this incident can be returned."""
    closed: bool = False

    @property
    def assignments(self) -> int:
        return self.current.assignment_no if self.current is not None else 0

    def refuses_return(self, returned: Returned) -> str | None:
        """Why routing does not act on this return, or None if it does."""
        if self.current is None:
            return "not_assigned"
        if self.final_ruling:
            return "final_ruling"
        if self.closed:
            return "closed"
        if returned.unit.id != self.current.lead_unit.id:
            return "not_current_assignee"
        return None


def evolve(state: RoutingState, event: IncidentEvent) -> RoutingState:
    if isinstance(event, Reported):
        return replace(state, category=event.report.category, location=event.report.location)
    if isinstance(event, Assigned):
        return replace(
            state,
            current=event,
            policy_version=state.policy_version or event.policy_version,
            final_ruling=state.final_ruling or event.final_ruling,
        )
    if isinstance(event, Returned):
        if state.refuses_return(event) is not None:
            return state
        return replace(
            state,
            returns=state.returns + 1,
            excluded=_excluding(state.excluded, event.unit),
            location=event.corrected_location or state.location,
            category=event.corrected_category or state.category,
        )
    if isinstance(event, Closed):
        return replace(state, closed=True)
    if isinstance(event, Reopened):
        return replace(state, closed=False)
    return state


def _excluding(excluded: frozenset[str], unit: UnitRef) -> frozenset[str]:
    if unit.kind is UnitKind.COMMAND_CENTRE:
        return excluded
    return excluded | {unit.id}
