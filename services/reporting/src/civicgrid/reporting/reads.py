"""What reporting reads of the incident's events, for the consumer contract tests
(tests/test_consumer_contracts.py): event type -> dotted field paths. Its facts per incident:
where and what (report, jurisdiction), who (lead unit, level), when (each step's time), how
(on time, breached, escalated, satisfied, reopened, merged)."""

from __future__ import annotations

from civicgrid.events.contracts import Reads

_ENVELOPE = ("event_id", "incident_id", "occurred_at")

READS: Reads = {
    "reported": (*_ENVELOPE, "report.category", "report.channel"),
    "merged": _ENVELOPE,
    "assigned": (
        *_ENVELOPE,
        "level",
        "lead_unit.id",
        "lead_unit.kind",
        "jurisdiction.community_id",
        "jurisdiction.grid_id",
        "jurisdiction.micro_grid_id",
    ),
    "accepted": _ENVELOPE,
    "arrived": _ENVELOPE,
    "returned": (*_ENVELOPE, "reason_code"),
    "suspended": _ENVELOPE,
    "resumed": _ENVELOPE,
    "deadline_extended": (*_ENVELOPE, "clock", "new_due_at"),
    "resolved": _ENVELOPE,
    "callback_recorded": (*_ENVELOPE, "satisfied", "rating"),
    "closed": (*_ENVELOPE, "reason", "merged_into"),
    "reopened": _ENVELOPE,
    "escalated": (*_ENVELOPE, "clock", "ladder_level"),
    "sla_clock_started": (*_ENVELOPE, "clock", "clock_version", "due_at", "duration"),
    "sla_clock_stopped": (*_ENVELOPE, "clock", "clock_version", "reason", "on_time"),
    "sla_warning": (*_ENVELOPE, "clock", "clock_version"),
    "sla_breached": (*_ENVELOPE, "clock", "clock_version", "due_at"),
}
