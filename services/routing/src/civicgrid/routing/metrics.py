"""Routing's domain metrics. Labels are bounded: levels, rule names, event types; never ids."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from civicgrid.events.incident_events import Assigned


@dataclass(frozen=True)
class RoutingMetrics:
    assignments: Counter
    ignored: Counter
    conflicts: Counter
    handling: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> RoutingMetrics:
        return cls(
            assignments=Counter(
                "civicgrid_routing_assignments_total",
                "Assignments written, by level, rule and the event type that caused them",
                ["level", "rule", "cause", "final_ruling"],
                registry=registry,
            ),
            ignored=Counter(
                "civicgrid_routing_ignored_total",
                "Triggers routing did not act on, by event type and why",
                ["cause", "reason"],
                registry=registry,
            ),
            conflicts=Counter(
                "civicgrid_routing_conflicts_total",
                "Appends refused because the incident changed meanwhile (decided again)",
                registry=registry,
            ),
            handling=Histogram(
                "civicgrid_routing_handling_seconds",
                "From picking up a trigger to its assignments being stored",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
                registry=registry,
            ),
        )

    def assigned(self, event: Assigned, cause: str) -> None:
        self.assignments.labels(
            event.level.value, event.rule, cause, str(event.final_ruling).lower()
        ).inc()
