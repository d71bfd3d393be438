"""What sla reads of the incident's events, for the consumer contract tests
(tests/test_consumer_contracts.py): event type -> dotted field paths. Clocks start on an
assignment, stop on acceptance, arrival and resolution, pause and resume with suspensions,
move with approved extensions, end or restart with closing and reopening, and restart under a
class the command centre orders."""

from __future__ import annotations

from civicgrid.events.contracts import Reads

_ENVELOPE = ("event_id", "incident_id", "occurred_at", "correlation_id")

READS: Reads = {
    "assigned": (
        *_ENVELOPE,
        "sla_class",
        "on_site",
        "lead_unit.id",
        "lead_unit.kind",
        "assignment_no",
    ),
    "accepted": (*_ENVELOPE, "unit.id"),
    "arrived": (*_ENVELOPE, "unit.id"),
    "returned": _ENVELOPE,
    "reassigned": _ENVELOPE,
    "suspended": _ENVELOPE,
    "resumed": _ENVELOPE,
    "deadline_extended": (*_ENVELOPE, "clock", "new_due_at"),
    "resolved": _ENVELOPE,
    "closed": _ENVELOPE,
    "reopened": _ENVELOPE,
    "sla_class_ordered": (*_ENVELOPE, "sla_class"),
    "sla_clock_started": (
        *_ENVELOPE,
        "clock",
        "clock_version",
        "sla_class",
        "policy_version",
        "unit.id",
        "started_at",
        "due_at",
        "warn_at",
        "warn_ats",
        "duration",
    ),
    "sla_clock_stopped": (*_ENVELOPE, "clock", "clock_version", "reason", "on_time"),
    "sla_clock_paused": (*_ENVELOPE, "clock", "clock_version", "paused_at"),
    "sla_clock_resumed": (*_ENVELOPE, "clock", "clock_version", "due_at"),
    "sla_warning": (*_ENVELOPE, "clock", "clock_version", "warning_no"),
    "sla_breached": (*_ENVELOPE, "clock", "clock_version"),
    "escalated": (*_ENVELOPE, "clock", "clock_version", "ladder_level", "repeat"),
}
