"""Composition root of the sla service.

For now it only consumes and logs the events it will act on; its own issue fills it in.
"""

from __future__ import annotations

import structlog

from civicgrid.events.base import IncidentEvent
from civicgrid.events.consumer import ConsumerSpec, Delivery
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings

log = structlog.get_logger("civicgrid.sla")

CONSUMER = ConsumerSpec(
    service="sla",
    durable="sla-observer",
    filter_subjects=("incident.>",),
)


async def log_event(event: IncidentEvent, delivery: Delivery) -> None:
    log.info("event_seen", sequence=delivery.stream_sequence)


def build(settings: ServiceSettings) -> Service:
    service = Service(settings, title="civicgrid sla")
    service.consume(CONSUMER, log_event)
    return service
