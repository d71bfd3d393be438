"""Which service writes which event type: the basis of NATS permissions and of review.

A service never writes another's events; the embedded server enforces it per user.
"""

from __future__ import annotations

INTAKE_EVENTS = (
    "reported",
    "merged",
    "accepted",
    "arrived",
    "returned",
    "suspended",
    "resumed",
    "deadline_extended",
    "resolved",
    "callback_recorded",
    "closed",
    "reopened",
    "reassigned",
    "sla_class_ordered",
)
ROUTING_EVENTS = ("assigned",)
SLA_EVENTS = (
    "sla_clock_started",
    "sla_clock_stopped",
    "sla_clock_paused",
    "sla_clock_resumed",
    "sla_warning",
    "sla_breached",
    "escalated",
)

WRITERS: dict[str, tuple[str, ...]] = {
    "intake": INTAKE_EVENTS,
    "routing": ROUTING_EVENTS,
    "sla": SLA_EVENTS,
    "reporting": (),
}

SERVICES = tuple(WRITERS)


def writer_of(event_type: str) -> str:
    for service, event_types in WRITERS.items():
        if event_type in event_types:
            return service
    raise KeyError(f"no service owns event type {event_type!r}")
