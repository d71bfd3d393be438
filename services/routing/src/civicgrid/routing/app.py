"""Composition root of the routing service.

For now it only consumes and logs the events it will act on; its own issue fills it in.
"""

from __future__ import annotations

import structlog
from civicgrid.events.base import IncidentEvent
from civicgrid.events.consumer import ConsumerSpec, Delivery
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings

log = structlog.get_logger("civicgrid.routing")

CONSUMER = ConsumerSpec(
    service="routing",
    durable="routing-observer",
    filter_subjects=(
        "incident.*.reported",
        "incident.*.returned",
        "incident.*.reopened",
        "incident.*.escalated",
        "incident.*.reassigned",
    ),
)


async def log_event(event: IncidentEvent, delivery: Delivery) -> None:
    log.info("event_seen", sequence=delivery.stream_sequence)


def build(settings: ServiceSettings) -> Service:
    service = Service(settings, title="civicgrid routing")
    service.consume(CONSUMER, log_event)
    return service
