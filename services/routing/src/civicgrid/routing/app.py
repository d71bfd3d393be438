"""Composition root of the routing service: configuration, policy book, consumer, HTTP."""

from __future__ import annotations

from prometheus_client import Gauge

from civicgrid.events import durables
from civicgrid.events.base import IncidentEvent
from civicgrid.events.consumer import ConsumerSpec, Delivery
from civicgrid.events.streams import ROUTING_POLICY_BUCKET
from civicgrid.routing.config import RoutingConfig, load_routing_config
from civicgrid.routing.handlers import RoutingPorts, handle
from civicgrid.routing.http import install_explain
from civicgrid.routing.metrics import RoutingMetrics
from civicgrid.routing.policy import PolicyBook, seed_policy
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings

CONSUMER = ConsumerSpec(
    service="routing",
    durable=durables.ROUTING.name,
    filter_subjects=(
        "incident.*.reported",
        "incident.*.returned",
        "incident.*.reopened",
        "incident.*.escalated",
        "incident.*.reassigned",
    ),
)


def build(
    settings: ServiceSettings,
    *,
    config: RoutingConfig | None = None,
    consumer: ConsumerSpec = CONSUMER,
    policy_bucket: str = ROUTING_POLICY_BUCKET,
    policy_refresh_s: float = 1.0,
) -> Service:
    config = config or load_routing_config(settings.config_dir)
    service = Service(settings, title="civicgrid routing")
    policies = PolicyBook(
        lambda: service.jetstream, bucket=policy_bucket, refresh_s=policy_refresh_s
    )
    ports = RoutingPorts(
        store=service.decisions,
        city=config.city,
        policies=policies,
        metrics=RoutingMetrics.create(service.registry),
    )

    async def seed_and_read_policy() -> None:
        await seed_policy(service.jetstream, config.configured_policy, bucket=policy_bucket)
        await policies.current()

    async def policy_loaded() -> str | None:
        return None if policies.last_seen is not None else "routing policy not loaded"

    async def route(event: IncidentEvent, delivery: Delivery) -> None:
        await handle(event, ports, at_least=delivery.stream_sequence)

    Gauge(
        "civicgrid_routing_policy_version",
        "The routing policy version new incidents start with",
        registry=service.registry,
    ).set_function(lambda: policies.last_seen.policy_version if policies.last_seen else 0)
    service.on_connected.append(seed_and_read_policy)
    service.readiness_checks.append(policy_loaded)
    service.consume(consumer, route)
    install_explain(service.http, config.city, policies)
    return service
