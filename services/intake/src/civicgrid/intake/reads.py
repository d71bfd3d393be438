"""What intake reads as a consumer, for the consumer contract tests
(tests/test_consumer_contracts.py): the assignment (who handles it, for Open311's
agency_responsible and the state a command is checked against), the SLA clocks (Open311's
expected_datetime), and its own ``merged``, which its consumer ``intake-merges`` is woken by to
close a merged incident's source."""

from __future__ import annotations

from civicgrid.events.contracts import Reads

READS: Reads = {
    "assigned": ("lead_unit.id", "lead_unit.kind", "lead_unit.name", "on_site", "sla_class"),
    "sla_class_ordered": ("sla_class",),
    "sla_clock_started": ("clock", "due_at"),
    "sla_clock_stopped": ("clock",),
    "merged": ("event_id", "incident_id", "from_incident_id"),
}
