"""What happened, counted from the events in ``incident.>``: the simulation's summary.

The definitions are reporting's (services/reporting facts.py and figures.py), restated here
because the simulation is a client that reads the public stream, not a reporting library:
an incident is counted once; ``merged`` counts reports that joined an open incident; on time is
the resolve clock met by its due time with no breach recorded against that clock run; the
community-level ratio is resolved incidents, never dispatched above community level and
resolved at grid or community level, over all resolved. A test holds the two to each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from civicgrid.events.base import IncidentEvent
from civicgrid.events.incident_events import (
    Assigned,
    ClockStopReason,
    Closed,
    Escalated,
    Merged,
    Reopened,
    Reported,
    Resolved,
    Returned,
    SlaBreached,
    SlaClockStarted,
    SlaClockStopped,
    SlaWarning,
)

LOCAL_LEVELS = frozenset({"grid", "community"})


@dataclass
class _Incident:
    level: str | None = None
    reached_department: bool = False
    resolved: bool = False
    resolved_level: str | None = None
    closed: bool = False
    resolve_version: int = 0
    resolve_on_time: bool | None = None


@dataclass
class Tally:
    """Counts over the incidents whose ``reported`` event this tally saw."""

    incidents: dict[str, _Incident] = field(default_factory=dict)
    merged: int = 0
    returns: int = 0
    reopens: int = 0
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    ladder_levels: dict[int, int] = field(default_factory=dict)
    last_sequence: int = 0

    def add(self, event: IncidentEvent, sequence: int) -> None:
        self.last_sequence = max(self.last_sequence, sequence)
        if isinstance(event, Reported):
            self.incidents.setdefault(event.incident_id, _Incident())
            return
        incident = self.incidents.get(event.incident_id)
        if incident is None:
            return  # an incident from before this run
        match event:
            case Merged():
                self.merged += 1
            case Assigned():
                incident.level = event.level.value
                incident.reached_department |= event.level.value not in LOCAL_LEVELS
            case Returned():
                self.returns += 1
            case Resolved():
                incident.resolved, incident.resolved_level = True, incident.level
            case Closed():
                incident.closed = True
            case Reopened():
                self.reopens += 1
                incident.resolved, incident.resolved_level, incident.closed = False, None, False
            case SlaWarning():
                self.warnings += 1
            case SlaBreached():
                self.breaches += 1
                if event.clock == "resolve" and event.clock_version >= incident.resolve_version:
                    incident.resolve_on_time = False
            case Escalated():
                self.escalations += 1
                level = event.ladder_level
                self.ladder_levels[level] = self.ladder_levels.get(level, 0) + 1
            case SlaClockStarted() if event.clock == "resolve":
                incident.resolve_version, incident.resolve_on_time = event.clock_version, None
            case SlaClockStopped() if event.clock == "resolve":
                if event.clock_version < incident.resolve_version:
                    return
                if event.reason is not ClockStopReason.MET or event.on_time is None:
                    # reporting compares with the due time when on_time is missing; sla always
                    # sets it for a met clock, so a missing one is left unjudged here.
                    return
                incident.resolve_on_time = event.on_time and incident.resolve_on_time is not False

    def summary(self) -> dict[str, Any]:
        everything = self.incidents.values()
        resolved = [i for i in everything if i.resolved]
        local = [
            i for i in resolved if not i.reached_department and i.resolved_level in LOCAL_LEVELS
        ]
        judged = [i for i in everything if i.resolve_on_time is not None]
        return {
            "incidents": len(self.incidents),
            "merged": self.merged,
            "resolved": len(resolved),
            "closed": sum(1 for i in everything if i.closed),
            "resolved_on_time": sum(1 for i in judged if i.resolve_on_time),
            "resolve_judged": len(judged),
            "returns": self.returns,
            "reopens": self.reopens,
            "warnings": self.warnings,
            "breaches": self.breaches,
            "escalations": self.escalations,
            "community_level": len(local),
            "community_level_of": len(resolved),
            "last_sequence": self.last_sequence,
        }
