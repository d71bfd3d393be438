"""How an event travels: JSON body plus CloudEvents binary-mode headers.

Other systems can read ``ce-*`` headers with any CloudEvents SDK without knowing our models.
"""

from __future__ import annotations

from civicgrid.events import subjects
from civicgrid.events.base import IncidentEvent

CE_SPECVERSION = "1.0"
CE_TYPE_PREFIX = "cn.civicgrid.incident."
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"
CORRELATION_ID = "civicgrid-correlation-id"
# What caused an append (a command's key, or a reaction's handler and event) and a fingerprint
# of what that cause asked for: the same key asking for something else is refused, not dropped.
CAUSE = "civicgrid-cause"
FINGERPRINT = "civicgrid-fingerprint"
BATCH_ID = "Nats-Batch-Id"
BATCH_SEQUENCE = "Nats-Batch-Sequence"
BATCH_COMMIT = "Nats-Batch-Commit"


def event_subject(event: IncidentEvent) -> str:
    return subjects.incident_event(event.incident_id, event.event_type)


def encode(event: IncidentEvent) -> bytes:
    return event.model_dump_json().encode()


def cloudevents_headers(event: IncidentEvent) -> dict[str, str]:
    return {
        "ce-specversion": CE_SPECVERSION,
        "ce-id": event.event_id,
        "ce-type": f"{CE_TYPE_PREFIX}{event.event_type}.v{event.schema_version}",
        "ce-source": f"/civicgrid/{event.source}",
        "ce-time": event.occurred_at.isoformat(),
        "ce-subject": event.incident_id,
        "content-type": "application/json",
        CORRELATION_ID: event.correlation_id,
    }
