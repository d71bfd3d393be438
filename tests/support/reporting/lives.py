"""An incident's life written as a chain of steps, minutes after its report.

``Life("i1", START).report().assign().accept(5).resolve(60).close(90).events`` is a valid event
sequence, so scripted tests, the hypothesis recount and the benchmark share one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from civicgrid.events.base import Actor, ActorKind, GeoPoint, IncidentEvent, UnitKind, UnitRef
from civicgrid.events.incident_events import (
    Accepted,
    Arrived,
    Assigned,
    CallbackRecorded,
    Channel,
    ClockStopReason,
    Closed,
    DeadlineExtended,
    Escalated,
    HandlingLevel,
    Jurisdiction,
    Merged,
    Reopened,
    ReportDetails,
    Reported,
    Resolved,
    Resumed,
    Returned,
    ReturnReason,
    SlaBreached,
    SlaClockStarted,
    SlaClockStopped,
    SlaWarning,
    Suspended,
)

ACTOR = Actor(kind=ActorKind.SYSTEM, id="tests")
_UNIT_KIND = {
    HandlingLevel.GRID: UnitKind.GRID,
    HandlingLevel.COMMUNITY: UnitKind.COMMUNITY,
    HandlingLevel.DEPARTMENT: UnitKind.DEPARTMENT,
    HandlingLevel.SOCIAL_ORG: UnitKind.SOCIAL_ORG,
    HandlingLevel.COMMAND_CENTRE: UnitKind.COMMAND_CENTRE,
}


@dataclass
class Life:
    incident_id: str
    start: datetime
    community: str = "c01"
    grid: str = "c01-g001"
    matter: str = "city-appearance.illegal-parking"
    channel: Channel = Channel.CITIZEN_APP
    events: list[IncidentEvent] = field(default_factory=list)
    unit: UnitRef | None = None
    clock_versions: dict[str, int] = field(default_factory=dict)

    def at(self, minute: float) -> datetime:
        return self.start + timedelta(minutes=minute)

    def _add(self, cls: type[IncidentEvent], minute: float, **fields: Any) -> Life:
        self.events.append(
            cls(
                incident_id=self.incident_id,
                occurred_at=self.at(minute),
                source="tests",
                actor=ACTOR,
                correlation_id=f"corr-{self.incident_id}",
                **fields,
            )
        )
        return self

    def _details(self) -> ReportDetails:
        return ReportDetails(
            channel=self.channel,
            category=self.matter,
            description="test report",
            location=GeoPoint(lon=120.55, lat=27.55),
        )

    def report(self) -> Life:
        return self._add(Reported, 0, report=self._details())

    def merge(self, minute: float) -> Life:
        return self._add(
            Merged, minute, report=self._details(), distance_m=10.0, minutes_apart=minute
        )

    def assign(
        self, minute: float = 1, level: HandlingLevel = HandlingLevel.GRID, unit_id: str = ""
    ) -> Life:
        count = sum(isinstance(e, Assigned) for e in self.events) + 1
        unit_id = unit_id or (
            self.grid
            if level is HandlingLevel.GRID
            else self.community
            if level is HandlingLevel.COMMUNITY
            else f"{level.value}-unit"
        )
        self.unit = UnitRef(kind=_UNIT_KIND[level], id=unit_id)
        return self._add(
            Assigned,
            minute,
            level=level,
            lead_unit=self.unit,
            sla_class="standard",
            on_site=False,
            jurisdiction=Jurisdiction(
                community_id=self.community, grid_id=self.grid, micro_grid_id=f"{self.grid}-m01"
            ),
            rule="test",
            policy_version=1,
            explanation="test",
            assignment_no=count,
        )

    def _unit(self) -> UnitRef:
        return self.unit or UnitRef(kind=UnitKind.GRID, id=self.grid)

    def accept(self, minute: float) -> Life:
        return self._add(Accepted, minute, unit=self._unit())

    def arrive(self, minute: float) -> Life:
        return self._add(Arrived, minute, unit=self._unit())

    def give_back(self, minute: float, reason: ReturnReason) -> Life:
        return self._add(Returned, minute, unit=self._unit(), reason_code=reason)

    def suspend(self, minute: float) -> Life:
        return self._add(Suspended, minute, unit=self._unit(), reason="holiday")

    def resume(self, minute: float) -> Life:
        return self._add(Resumed, minute, unit=self._unit())

    def extend(self, minute: float, clock: str, due_minute: float) -> Life:
        return self._add(
            DeadlineExtended,
            minute,
            clock=clock,
            new_due_at=self.at(due_minute),
            approved_by=UnitRef(kind=UnitKind.COMMAND_CENTRE, id="cc"),
            reason="more time",
        )

    def resolve(self, minute: float) -> Life:
        return self._add(Resolved, minute, unit=self._unit(), resolution="done")

    def callback(self, minute: float, satisfied: bool, rating: int = 5) -> Life:
        return self._add(CallbackRecorded, minute, satisfied=satisfied, rating=rating)

    def close(self, minute: float, merged_into: str | None = None) -> Life:
        return self._add(Closed, minute, merged_into=merged_into)

    def reopen(self, minute: float) -> Life:
        return self._add(Reopened, minute, reason="not fixed")

    def clock(
        self,
        minute: float,
        clock: str,
        due_minute: float,
        *,
        duration: str | None = None,
        sla_class: str = "standard",
    ) -> Life:
        """``duration`` as sla writes it ("30m", "5wd"); None as a producer before the field."""
        version = self.clock_versions[clock] = self.clock_versions.get(clock, 0) + 1
        return self._add(
            SlaClockStarted,
            minute,
            clock=clock,
            sla_class=sla_class,
            duration=duration,
            started_at=self.at(minute),
            due_at=self.at(due_minute),
            warn_at=self.at(minute + (due_minute - minute) * 0.8),
            clock_version=version,
        )

    def met(self, minute: float, clock: str, on_time: bool | None = None) -> Life:
        return self._add(
            SlaClockStopped,
            minute,
            clock=clock,
            reason=ClockStopReason.MET,
            on_time=on_time,
            clock_version=self.clock_versions[clock],
        )

    def cancel_clock(self, minute: float, clock: str) -> Life:
        return self._add(
            SlaClockStopped,
            minute,
            clock=clock,
            reason=ClockStopReason.SUPERSEDED,
            clock_version=self.clock_versions[clock],
        )

    def warn(self, minute: float, clock: str, due_minute: float) -> Life:
        return self._add(
            SlaWarning,
            minute,
            clock=clock,
            due_at=self.at(due_minute),
            clock_version=self.clock_versions[clock],
        )

    def breach(self, minute: float, clock: str, due_minute: float) -> Life:
        return self._add(
            SlaBreached,
            minute,
            clock=clock,
            due_at=self.at(due_minute),
            clock_version=self.clock_versions[clock],
        )

    def escalate(self, minute: float, level: int, clock: str = "resolve") -> Life:
        return self._add(
            Escalated,
            minute,
            clock=clock,
            ladder_level=level,
            ladder_name=f"level-{level}",
            reason="breached",
        )
