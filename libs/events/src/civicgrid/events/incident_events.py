"""The incident's life, as written by intake and routing (design section 4)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from civicgrid.events.base import AwareDatetime, Contract, GeoPoint, IncidentEvent, UnitRef

ScalarValue = str | int | float | bool


class Channel(StrEnum):
    HOTLINE_12345 = "hotline_12345"
    POLICE_110 = "police_110"
    IOT_SENSOR = "iot_sensor"
    VIDEO_AI = "video_ai"
    GRID_PATROL = "grid_patrol"
    CITIZEN_APP = "citizen_app"
    OPEN311 = "open311"


class Reporter(Contract):
    """The citizen who reported. Stored in the event for the callback; never logged."""

    name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)


class ReportDetails(Contract):
    """What one report said. Shared by ``reported`` and ``merged`` (a duplicate's report)."""

    channel: Channel
    external_ref: str | None = Field(default=None, max_length=128)
    category: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=4000)
    location: GeoPoint
    address: str | None = Field(default=None, max_length=500)
    reporter: Reporter | None = None
    media_urls: tuple[str, ...] = ()
    # Channel-specific facts: a sensor's device id and reading, a camera's detection, ...
    channel_details: dict[str, ScalarValue] = Field(default_factory=dict)
    # Open311 service-definition attributes answered by the reporter.
    attributes: dict[str, ScalarValue | list[str]] = Field(default_factory=dict)


class Reported(IncidentEvent):
    event_type: Literal["reported"] = "reported"
    schema_version: int = 2
    report: ReportDetails
    idempotency_key: str | None = Field(default=None, max_length=200)
    personal_fields: ClassVar[frozenset[str]] = frozenset({"report"})


class Merged(IncidentEvent):
    """A duplicate report (并单) joined this open incident instead of opening a new one."""

    event_type: Literal["merged"] = "merged"
    report: ReportDetails
    distance_m: float = Field(ge=0)
    minutes_apart: float = Field(ge=0)
    idempotency_key: str | None = Field(default=None, max_length=200)
    # Set when the command centre merged a whole incident into this one (its report is above).
    from_incident_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    personal_fields: ClassVar[frozenset[str]] = frozenset({"report"})


class HandlingLevel(StrEnum):
    GRID = "grid"
    COMMUNITY = "community"
    DEPARTMENT = "department"
    SOCIAL_ORG = "social_org"
    COMMAND_CENTRE = "command_centre"


class Jurisdiction(Contract):
    community_id: str | None = None
    grid_id: str | None = None
    micro_grid_id: str | None = None


class Assigned(IncidentEvent):
    """Routing's decision, with its reason: which rule, which policy version, and why."""

    event_type: Literal["assigned"] = "assigned"
    level: HandlingLevel
    lead_unit: UnitRef
    supporting_units: tuple[UnitRef, ...] = ()
    sla_class: str
    on_site: bool
    jurisdiction: Jurisdiction
    rule: str
    policy_version: int = Field(ge=1)
    explanation: str
    assignment_no: int = Field(ge=1)
    final_ruling: bool = False


class Accepted(IncidentEvent):
    event_type: Literal["accepted"] = "accepted"
    unit: UnitRef


class Arrived(IncidentEvent):
    event_type: Literal["arrived"] = "arrived"
    unit: UnitRef
    location: GeoPoint | None = None


class ReturnReason(StrEnum):
    WRONG_JURISDICTION = "wrong_jurisdiction"
    NOT_OUR_DUTY = "not_our_duty"
    UNCLEAR_OWNERSHIP = "unclear_ownership"
    INSUFFICIENT_INFORMATION = "insufficient_information"
    OTHER = "other"


class Returned(IncidentEvent):
    """退单: the assignee hands the dispatch back, with a reason, for routing to decide again."""

    event_type: Literal["returned"] = "returned"
    unit: UnitRef
    reason_code: ReturnReason
    note: str = Field(default="", max_length=2000)
    corrected_location: GeoPoint | None = None
    corrected_category: str | None = None


class Suspended(IncidentEvent):
    event_type: Literal["suspended"] = "suspended"
    unit: UnitRef
    reason: str = Field(min_length=1, max_length=2000)


class Resumed(IncidentEvent):
    event_type: Literal["resumed"] = "resumed"
    unit: UnitRef


class DeadlineExtended(IncidentEvent):
    event_type: Literal["deadline_extended"] = "deadline_extended"
    clock: str
    new_due_at: AwareDatetime
    approved_by: UnitRef
    reason: str = Field(min_length=1, max_length=2000)


class Resolved(IncidentEvent):
    event_type: Literal["resolved"] = "resolved"
    unit: UnitRef
    resolution: str = Field(min_length=1, max_length=4000)


class CallbackRecorded(IncidentEvent):
    """The citizen was called back: satisfied or not, with a rating."""

    event_type: Literal["callback_recorded"] = "callback_recorded"
    satisfied: bool
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=2000)


class Closed(IncidentEvent):
    event_type: Literal["closed"] = "closed"
    reason: str = Field(default="", max_length=2000)
    # Set when the command centre merged this incident into another: it lives on there.
    merged_into: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class Reopened(IncidentEvent):
    event_type: Literal["reopened"] = "reopened"
    reason: str = Field(min_length=1, max_length=2000)


class Reassigned(IncidentEvent):
    """The command centre's order to route again, optionally naming the unit."""

    event_type: Literal["reassigned"] = "reassigned"
    reason: str = Field(min_length=1, max_length=2000)
    to_unit: UnitRef | None = None
    to_level: HandlingLevel | None = None


class SlaClassOrdered(IncidentEvent):
    """The command centre ordered the incident's SLA class (e.g. urgent, difficult).

    The class otherwise comes from the matter (matters.yaml, through routing's assignment);
    an order stands for the rest of the incident's life, over later assignments too. The sla
    service restarts, from the order's time, every running clock whose deadline differs under
    the ordered class. No citizen data: who ordered it, the class, and why.
    """

    event_type: Literal["sla_class_ordered"] = "sla_class_ordered"
    sla_class: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    previous_class: str | None = Field(default=None, max_length=64)
    ordered_by: UnitRef
    reason: str = Field(min_length=1, max_length=2000)


class Escalated(IncidentEvent):
    """A rung of the escalation ladder was reached; ``request_reassignment`` is the whistle."""

    event_type: Literal["escalated"] = "escalated"
    clock: str
    ladder_level: int = Field(ge=1)
    ladder_name: str
    notify_unit: UnitRef | None = None
    request_reassignment: bool = False
    reason: str
    # Added by the sla service (optional, so older escalations still load): which clock
    # instance, the role reminded, the n-th repeat of this level (催办), and how late it was.
    clock_version: int | None = Field(default=None, ge=1)
    notify_role: str | None = None
    repeat: int = Field(default=0, ge=0)
    due_at: AwareDatetime | None = None
    late_s: float | None = None


class ClockStopReason(StrEnum):
    MET = "met"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


class SlaClockStarted(IncidentEvent):
    event_type: Literal["sla_clock_started"] = "sla_clock_started"
    clock: str
    sla_class: str
    started_at: AwareDatetime
    due_at: AwareDatetime
    warn_at: AwareDatetime
    clock_version: int = Field(ge=1)
    # Optional additions: whose clock, the SLA policy version it keeps, every warning time
    # (warn_at is the first), and the duration as the policy wrote it ("30m", "5wd").
    unit: UnitRef | None = None
    policy_version: int | None = Field(default=None, ge=1)
    warn_ats: tuple[AwareDatetime, ...] = ()
    duration: str | None = None


class SlaClockStopped(IncidentEvent):
    event_type: Literal["sla_clock_stopped"] = "sla_clock_stopped"
    clock: str
    reason: ClockStopReason
    on_time: bool | None = None
    clock_version: int = Field(ge=1)
    late_s: float | None = None


class SlaClockPaused(IncidentEvent):
    """A suspension paused a running clock: no warning, breach or escalation until resumed."""

    event_type: Literal["sla_clock_paused"] = "sla_clock_paused"
    clock: str
    clock_version: int = Field(ge=1)
    paused_at: AwareDatetime


class SlaClockResumed(IncidentEvent):
    """The clock runs again; its due time moved by the time it was paused."""

    event_type: Literal["sla_clock_resumed"] = "sla_clock_resumed"
    clock: str
    clock_version: int = Field(ge=1)
    due_at: AwareDatetime
    paused_s: float = Field(ge=0)


class SlaWarning(IncidentEvent):
    event_type: Literal["sla_warning"] = "sla_warning"
    clock: str
    due_at: AwareDatetime
    clock_version: int = Field(ge=1)
    warning_no: int = Field(default=1, ge=1)


class SlaBreached(IncidentEvent):
    event_type: Literal["sla_breached"] = "sla_breached"
    clock: str
    due_at: AwareDatetime
    clock_version: int = Field(ge=1)


__all__ = [
    "Accepted",
    "Arrived",
    "Assigned",
    "CallbackRecorded",
    "Channel",
    "ClockStopReason",
    "Closed",
    "DeadlineExtended",
    "Escalated",
    "HandlingLevel",
    "Jurisdiction",
    "Merged",
    "Reassigned",
    "Reopened",
    "ReportDetails",
    "Reported",
    "Reporter",
    "Resolved",
    "Resumed",
    "ReturnReason",
    "Returned",
    "ScalarValue",
    "SlaBreached",
    "SlaClassOrdered",
    "SlaClockPaused",
    "SlaClockResumed",
    "SlaClockStarted",
    "SlaClockStopped",
    "SlaWarning",
    "Suspended",
]
