"""Routing's domain: pure functions from an incident's history to its assignments.

No NATS, no files, no clock: the city and the policy version come in as values.
"""

from civicgrid.routing.domain.city import CityMap, Place, Unit
from civicgrid.routing.domain.decide import Plan, decide, plan_routing, policy_version_of
from civicgrid.routing.domain.decision import Context, Decision, Ignored, Why
from civicgrid.routing.domain.policy import MatterOverride, RoutingPolicy
from civicgrid.routing.domain.routing import route_new_report
from civicgrid.routing.domain.state import RoutingState, evolve

__all__ = [
    "CityMap",
    "Context",
    "Decision",
    "Ignored",
    "MatterOverride",
    "Place",
    "Plan",
    "RoutingPolicy",
    "RoutingState",
    "Unit",
    "Why",
    "decide",
    "evolve",
    "plan_routing",
    "policy_version_of",
    "route_new_report",
]
