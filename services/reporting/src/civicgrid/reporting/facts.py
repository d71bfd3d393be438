"""The fact row of one incident, and the pure fold of an event into it.

No I/O here: ``project`` takes the row as it is (or None) and one event with its stream
sequence, and returns the row as it becomes, or None when the event changes nothing (already
applied, or not something reporting counts). The database adapter and the plain-Python recount
in the tests both use it, so the figures cannot drift from the fold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from civicgrid.events.base import IncidentEvent
from civicgrid.events.incident_events import (
    Accepted,
    Arrived,
    Assigned,
    CallbackRecorded,
    ClockStopReason,
    Closed,
    DeadlineExtended,
    Escalated,
    HandlingLevel,
    Merged,
    Reopened,
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

CLOCKS = ("accept", "arrive", "resolve")
RETURN_REASONS = tuple(reason.value for reason in ReturnReason)
LOCAL_LEVELS = frozenset({HandlingLevel.GRID.value, HandlingLevel.COMMUNITY.value})
DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class IncidentFact:
    """One incident as reporting sees it. Nothing personal: no reporter, address or text."""

    incident_id: str
    last_sequence: int = 0
    reported_at: datetime | None = None
    reported_day: str | None = None  # the city's local date, YYYY-MM-DD
    channel: str | None = None
    matter: str | None = None
    matter_group: str | None = None
    community_id: str | None = None
    grid_id: str | None = None
    micro_grid_id: str | None = None
    level: str | None = None  # the current assignment's handling level
    reached_department: bool = False  # some assignment went above community level
    lead_unit_id: str | None = None
    lead_unit_kind: str | None = None
    assignments: int = 0
    first_assigned_at: datetime | None = None
    accepted_at: datetime | None = None
    arrived_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_level: str | None = None
    closed_at: datetime | None = None
    reopened_at: datetime | None = None
    merged_into: str | None = None
    returns: int = 0
    returns_wrong_jurisdiction: int = 0
    returns_not_our_duty: int = 0
    returns_unclear_ownership: int = 0
    returns_insufficient_information: int = 0
    returns_other: int = 0
    merges: int = 0
    suspensions: int = 0
    suspended: bool = False
    extensions: int = 0
    reopens: int = 0
    accept_due_at: datetime | None = None
    accept_on_time: bool | None = None
    accept_clock_version: int = 0
    accept_duration: str | None = None  # as the policy wrote it: "30m", "5wd"
    arrive_due_at: datetime | None = None
    arrive_on_time: bool | None = None
    arrive_clock_version: int = 0
    arrive_duration: str | None = None
    resolve_due_at: datetime | None = None
    resolve_on_time: bool | None = None
    resolve_clock_version: int = 0
    resolve_duration: str | None = None
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    escalation_level: int = 0
    callbacks: int = 0
    satisfied: bool | None = None
    rating: int | None = None

    def as_row(self) -> dict[str, object]:
        # Not dataclasses.asdict: it deep-copies every value, and this runs once per write.
        return {name: getattr(self, name) for name in FACT_COLUMNS}

    def with_changes(self, changes: dict[str, Any]) -> IncidentFact:
        """``dataclasses.replace`` without re-running __init__ over ~50 fields per event."""
        unknown = changes.keys() - _FIELD_NAMES
        if unknown:
            raise TypeError(f"not fields of IncidentFact: {sorted(unknown)}")
        new = object.__new__(IncidentFact)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new


FACT_COLUMNS = tuple(field.name for field in dataclasses.fields(IncidentFact))
_FIELD_NAMES = frozenset(FACT_COLUMNS)


def project(
    fact: IncidentFact | None,
    event: IncidentEvent,
    sequence: int,
    zone: ZoneInfo = DEFAULT_ZONE,
) -> IncidentFact | None:
    """The row after ``event`` (stream ``sequence``); None when nothing changes."""
    if fact is not None and sequence <= fact.last_sequence:
        return None  # redelivered or replayed: already in the row
    current = fact or IncidentFact(incident_id=event.incident_id)
    changes = _changes(current, event, zone)
    if changes is None:
        return None
    return current.with_changes({**changes, "last_sequence": sequence})


def _changes(fact: IncidentFact, event: IncidentEvent, zone: ZoneInfo) -> dict[str, Any] | None:
    at = event.occurred_at
    match event:
        case Reported():
            category = event.report.category
            return {
                "reported_at": at,
                "reported_day": at.astimezone(zone).date().isoformat(),
                "channel": event.report.channel.value,
                "matter": category,
                "matter_group": category.split(".", 1)[0],
            }
        case Merged():
            return {"merges": fact.merges + 1}
        case Assigned():
            level = event.level.value
            jurisdiction = event.jurisdiction
            return {
                "level": level,
                "reached_department": fact.reached_department or level not in LOCAL_LEVELS,
                "lead_unit_id": event.lead_unit.id,
                "lead_unit_kind": event.lead_unit.kind.value,
                "assignments": fact.assignments + 1,
                "first_assigned_at": fact.first_assigned_at or at,
                "community_id": jurisdiction.community_id or fact.community_id,
                "grid_id": jurisdiction.grid_id or fact.grid_id,
                "micro_grid_id": jurisdiction.micro_grid_id or fact.micro_grid_id,
            }
        case Accepted():
            return {"accepted_at": fact.accepted_at or at}
        case Arrived():
            return {"arrived_at": fact.arrived_at or at}
        case Returned():
            reason = f"returns_{event.reason_code.value}"
            return {"returns": fact.returns + 1, reason: getattr(fact, reason) + 1}
        case Suspended():
            return {"suspensions": fact.suspensions + 1, "suspended": True}
        case Resumed():
            return {"suspended": False}
        case DeadlineExtended():
            changes: dict[str, Any] = {"extensions": fact.extensions + 1}
            if event.clock in CLOCKS:
                changes[f"{event.clock}_due_at"] = event.new_due_at
            return changes
        case Resolved():
            return {"resolved_at": at, "resolved_level": fact.level, "suspended": False}
        case CallbackRecorded():
            return {
                "callbacks": fact.callbacks + 1,
                "satisfied": event.satisfied,
                "rating": event.rating,
            }
        case Closed():
            return {"closed_at": at, "merged_into": event.merged_into, "suspended": False}
        case Reopened():
            return {
                "reopens": fact.reopens + 1,
                "reopened_at": at,
                "resolved_at": None,
                "resolved_level": None,
                "closed_at": None,
            }
        case Escalated():
            return {
                "escalations": fact.escalations + 1,
                "escalation_level": max(fact.escalation_level, event.ladder_level),
            }
        case SlaClockStarted():
            if event.clock not in CLOCKS:
                return None
            return {
                f"{event.clock}_due_at": event.due_at,
                f"{event.clock}_on_time": None,
                f"{event.clock}_clock_version": event.clock_version,
                # Says whether the clock counts working days ("5wd"): durations.py measures
                # such an incident in working days. Producers before the field: None.
                f"{event.clock}_duration": event.duration,
            }
        case SlaClockStopped():
            if not _current_clock(fact, event.clock, event.clock_version):
                return None
            if event.reason is not ClockStopReason.MET:
                return None
            on_time = event.on_time
            if on_time is None:
                due = getattr(fact, f"{event.clock}_due_at")
                on_time = due is None or at <= due
            # A breach already recorded stays a miss, whatever the stop says.
            if getattr(fact, f"{event.clock}_on_time") is False:
                on_time = False
            return {f"{event.clock}_on_time": on_time}
        case SlaWarning():
            return {"warnings": fact.warnings + 1}
        case SlaBreached():
            changes = {"breaches": fact.breaches + 1}
            if _current_clock(fact, event.clock, event.clock_version):
                changes[f"{event.clock}_on_time"] = False
            return changes
    return None


def _current_clock(fact: IncidentFact, clock: str, version: int) -> bool:
    return clock in CLOCKS and version >= int(getattr(fact, f"{clock}_clock_version"))
