"""What routing reads of other services' events (and its own), for the consumer contract
tests (tests/test_consumer_contracts.py): event type -> dotted field paths. It is woken by
reported, returned, reopened, escalated and reassigned, and folds the incident's history."""

from __future__ import annotations

from civicgrid.events.contracts import Reads

_ENVELOPE = ("event_id", "incident_id", "causation_id", "correlation_id")
_UNIT = ("id", "kind", "name")

READS: Reads = {
    "reported": (*_ENVELOPE, "report.category", "report.location.lon", "report.location.lat"),
    "assigned": (
        *_ENVELOPE,
        "level",
        *(f"lead_unit.{f}" for f in _UNIT),
        "jurisdiction.community_id",
        "jurisdiction.grid_id",
        "policy_version",
        "assignment_no",
        "final_ruling",
    ),
    "returned": (
        *_ENVELOPE,
        *(f"unit.{f}" for f in _UNIT),
        "reason_code",
        "corrected_location.lon",
        "corrected_location.lat",
        "corrected_category",
    ),
    "closed": _ENVELOPE,
    "reopened": (*_ENVELOPE, "reason"),
    "escalated": (*_ENVELOPE, "request_reassignment", "ladder_level", "ladder_name", "reason"),
    "reassigned": (*_ENVELOPE, "reason", "to_unit.id", "to_level"),
}
