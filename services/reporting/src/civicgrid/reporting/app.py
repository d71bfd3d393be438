"""Composition root of the reporting service.

For now it only consumes and logs the events it will act on; its own issue fills it in.
"""

from __future__ import annotations

import structlog

from civicgrid.events.base import IncidentEvent
from civicgrid.events.consumer import ConsumerSpec, Delivery
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings

log = structlog.get_logger("civicgrid.reporting")

CONSUMER = ConsumerSpec(
    service="reporting",
    durable="reporting-observer",
    filter_subjects=("incident.>",),
)


async def log_event(event: IncidentEvent, delivery: Delivery) -> None:
    log.info("event_seen", sequence=delivery.stream_sequence)


def build(settings: ServiceSettings) -> Service:
    service = Service(settings, title="civicgrid reporting")
    service.consume(CONSUMER, log_event)
    return service
