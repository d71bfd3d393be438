"""An incident's clocks, folded from its history.

The fold is the one truth about a clock: its version (a counter per clock name, the fence
every timer firing is checked against), due time (moved by resumes and extensions), and which
warnings, breach and ladder levels it has recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from civicgrid.events.base import IncidentEvent, UnitRef
from civicgrid.events.incident_events import (
    Assigned,
    ClockStopReason,
    DeadlineExtended,
    Escalated,
    SlaBreached,
    SlaClassOrdered,
    SlaClockPaused,
    SlaClockResumed,
    SlaClockStarted,
    SlaClockStopped,
    SlaWarning,
)

SLA_SOURCE = "sla"


class Status(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Clock:
    name: str
    version: int
    sla_class: str
    policy_version: int | None
    unit: UnitRef | None
    started_at: datetime
    due_at: datetime
    warn_leads: tuple[timedelta, ...]
    """How long before the due time each warning fires (it moves with the due time)."""
    status: Status = Status.RUNNING
    paused_at: datetime | None = None
    warnings: int = 0
    breached: bool = False
    escalations: tuple[tuple[int, int], ...] = ()
    """(ladder level, repeat) recorded, in order."""
    stop_reason: ClockStopReason | None = None
    on_time: bool | None = None
    stopped_at: datetime | None = None
    duration: str | None = None

    @property
    def active(self) -> bool:
        return self.status is not Status.STOPPED

    def warning_at(self, number: int) -> datetime:
        return self.due_at - self.warn_leads[number - 1]


@dataclass(frozen=True)
class Clocks:
    """Every clock of one incident (the latest instance per clock name) and its context."""

    incident_id: str
    by_name: dict[str, Clock] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    policy_version: int | None = None
    last_assignment: Assigned | None = None
    ordered_class: str | None = None
    """The command centre's order (``sla_class_ordered``): it stands over later assignments."""
    closed: bool = False

    def running(self) -> list[Clock]:
        return [clock for clock in self.by_name.values() if clock.status is Status.RUNNING]

    def active(self) -> list[Clock]:
        return [clock for clock in self.by_name.values() if clock.active]

    def next_version(self, name: str) -> int:
        return self.versions.get(name, 0) + 1


def apply(clocks: Clocks, event: IncidentEvent) -> Clocks:
    """One event's effect on the clocks (events that do not touch clocks change nothing)."""
    if isinstance(event, Assigned):
        return replace(clocks, last_assignment=event)
    if isinstance(event, SlaClassOrdered):
        return replace(clocks, ordered_class=event.sla_class)
    if isinstance(event, DeadlineExtended):
        clock = clocks.by_name.get(event.clock)
        if clock is None or not clock.active:
            return clocks
        return _with(clocks, replace(clock, due_at=event.new_due_at))
    if isinstance(event, SlaClockStarted):
        warn_ats = event.warn_ats or (event.warn_at,)
        clock = Clock(
            name=event.clock,
            version=event.clock_version,
            sla_class=event.sla_class,
            policy_version=event.policy_version,
            unit=event.unit,
            started_at=event.started_at,
            due_at=event.due_at,
            warn_leads=tuple(event.due_at - at for at in warn_ats),
            duration=event.duration,
        )
        versions = {**clocks.versions, event.clock: max(event.clock_version, _v(clocks, event))}
        policy = clocks.policy_version or event.policy_version
        return replace(_with(clocks, clock), versions=versions, policy_version=policy)
    if isinstance(event, SlaClockStopped | SlaClockPaused | SlaClockResumed | SlaWarning):
        clock = _current(clocks, event.clock, event.clock_version)
        if clock is None:
            return clocks
        if isinstance(event, SlaClockStopped):
            clock = replace(
                clock,
                status=Status.STOPPED,
                stop_reason=event.reason,
                on_time=event.on_time,
                stopped_at=event.occurred_at,
            )
        elif isinstance(event, SlaClockPaused):
            clock = replace(clock, status=Status.PAUSED, paused_at=event.paused_at)
        elif isinstance(event, SlaClockResumed):
            clock = replace(clock, status=Status.RUNNING, paused_at=None, due_at=event.due_at)
        else:
            clock = replace(clock, warnings=max(clock.warnings, event.warning_no))
        return _with(clocks, clock)
    if isinstance(event, SlaBreached):
        clock = _current(clocks, event.clock, event.clock_version)
        return clocks if clock is None else _with(clocks, replace(clock, breached=True))
    if isinstance(event, Escalated) and event.clock_version is not None:
        clock = _current(clocks, event.clock, event.clock_version)
        if clock is None:
            return clocks
        step = (event.ladder_level, event.repeat)
        if step in clock.escalations:
            return clocks
        return _with(clocks, replace(clock, escalations=(*clock.escalations, step)))
    if event.event_type == "closed":
        return replace(clocks, closed=True)
    if event.event_type == "reopened":
        return replace(clocks, closed=False)
    return clocks


def _v(clocks: Clocks, event: SlaClockStarted) -> int:
    return clocks.versions.get(event.clock, 0)


def _current(clocks: Clocks, name: str, version: int) -> Clock | None:
    clock = clocks.by_name.get(name)
    return clock if clock is not None and clock.version == version else None


def _with(clocks: Clocks, clock: Clock) -> Clocks:
    return replace(clocks, by_name={**clocks.by_name, clock.name: clock})
