"""Composition root of the intake service: the one place that wires real adapters.

``build(settings)`` is what ``python -m civicgrid.intake`` runs; ``compose`` returns the
parts as well, for tests; ``asyncapi_schema()`` renders the NATS surface without connecting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from civicgrid.events import durables, subjects
from civicgrid.events.base import IncidentEvent, utc_now
from civicgrid.events.consumer import ConsumerSpec, Delivery, EventHandler
from civicgrid.events.incident_events import Merged
from civicgrid.events.projector import Projector, ProjectorMetrics
from civicgrid.intake.access import Gate, KeyRing, RateLimiter
from civicgrid.intake.catalogue import Bounds, Catalogue, InMemoryCatalogue
from civicgrid.intake.claims import DuplicateClaims
from civicgrid.intake.config import IntakeConfig
from civicgrid.intake.handlers import Intake
from civicgrid.intake.index import IncidentIndex
from civicgrid.intake.metrics import IntakeMetrics
from civicgrid.intake.nats_api import attach_nats_api
from civicgrid.intake.receipts import IntakeReply
from civicgrid.intake.web.errors import OPEN311_PREFIX, install_error_handlers, is_open311
from civicgrid.intake.web.limits import BodySizeLimit
from civicgrid.intake.web.native import native_router
from civicgrid.intake.web.open311_routes import discovery_router, open311_router
from civicgrid.servicekit.apicheck import drop_unanswered
from civicgrid.servicekit.asyncapi import asyncapi_document
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import DEFAULT_NATS_URL, ServiceSettings

VERSION = "0.1.0"
DESCRIPTION = """\
Intake is the write side of civicgrid: every report and every handler's action enters here,
is checked against the incident's current state, and becomes an event in INCIDENTS.

- Open311 GeoReport v2 (JSON and XML, by extension) under /open311/v2 (reading needs no key;
  lat/long are WGS84); service discovery at /open311/discovery.json|xml.
- The native API under /api/v1 (X-API-Key; coordinates WGS84, or GCJ-02 declared with "crs").
- NATS request/reply on intake.report.<channel> and intake.command.<command>.
"""


# Closing the source of a command centre's merge is a reaction: retried by the event flow
# until done, whatever happened to the request that decided the merge.
MERGES = ConsumerSpec(
    service="intake",
    durable=durables.INTAKE_MERGES.name,
    filter_subjects=("incident.*.merged",),
)


def _close_merged_sources(intake: Intake) -> EventHandler:
    async def close(event: IncidentEvent, delivery: Delivery) -> None:
        if isinstance(event, Merged):
            await intake.close_merged(event, at_least=delivery.stream_sequence)

    return close


@dataclass
class IntakeApp:
    service: Service
    intake: Intake
    index: IncidentIndex
    gate: Gate
    projector: Projector


def compose(
    settings: ServiceSettings,
    *,
    catalogue: Catalogue | None = None,
    keys: KeyRing | None = None,
    config: IntakeConfig | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> IntakeApp:
    config = config or IntakeConfig.from_env()
    if catalogue is None:
        from civicgrid.intake.city_catalogue import load_catalogue

        catalogue = load_catalogue(settings.config_dir)
    keys = keys or KeyRing.from_sources(config.dev_api_key, config.api_keys_file)
    service = Service(settings, title="civicgrid intake")
    service.http.version = VERSION
    service.http.description = DESCRIPTION
    metrics = IntakeMetrics.create(service.registry)
    index = IncidentIndex()
    claims = DuplicateClaims(lambda: service.jetstream)
    intake = Intake(lambda: service.store, index, catalogue, metrics, claims, clock)
    gate = Gate(keys, RateLimiter())
    projector = Projector(
        index,
        lambda: service.jetstream,
        service.dead_letters,
        ProjectorMetrics.create(service.registry),
    )
    service.consume(MERGES, _close_merged_sources(intake))
    service.on_connected.append(projector.start)
    service.on_stopping.append(projector.stop)

    async def index_caught_up() -> str | None:
        return projector.problem()

    service.readiness_checks.append(index_caught_up)

    service.http.include_router(native_router(intake, gate))
    service.http.include_router(open311_router(intake, gate, catalogue))
    service.http.include_router(discovery_router(catalogue))

    def count_too_large(path: str) -> None:
        metrics.refusals.labels("open311" if is_open311(path) else "api", "413").inc()

    service.http.add_middleware(
        BodySizeLimit, max_bytes=config.max_body_bytes, on_refused=count_too_large
    )
    install_error_handlers(service.http, metrics)  # last: its guard is the outermost layer
    drop_unanswered(service.http, "422", OPEN311_PREFIX)  # Open311 answers bad input with 400
    attach_nats_api(service.broker, intake, gate, config.max_body_bytes, metrics)
    return IntakeApp(service, intake, index, gate, projector)


def build(settings: ServiceSettings) -> Service:
    return compose(settings).service


def asyncapi_schema() -> dict[str, Any]:
    """Intake's AsyncAPI 3.0 document as a dict; builds the service without connecting and
    without reading the city configuration."""
    settings = ServiceSettings(
        service="intake",
        nats_url=DEFAULT_NATS_URL,
        http_host="127.0.0.1",
        http_port=8081,
        config_dir=None,
        log_level="INFO",
        instance="intake-docs",
        stream_replicas=1,
    )
    parts = compose(
        settings,
        catalogue=InMemoryCatalogue([], Bounds(0, 0, 0, 0)),
        keys=KeyRing({}),
        config=IntakeConfig(dev_api_key=None, api_keys_file=None, max_body_bytes=65536),
    )
    # The shared document (typed request payloads from FastStream, the events intake writes
    # from the contract), completed with the reply every request gets.
    return _with_replies(asyncapi_document(parts.service))


def _with_replies(document: dict[str, Any]) -> dict[str, Any]:
    """FastStream documents what a subscriber receives; add what every request gets back."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    reply_schema = IntakeReply.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(reply_schema.pop("$defs", {}))
    schemas["IntakeReply"] = reply_schema
    components.setdefault("messages", {})["IntakeReply"] = {
        "title": "IntakeReply",
        "payload": {"$ref": "#/components/schemas/IntakeReply"},
    }
    document.setdefault("channels", {})["intake.reply"] = {
        "address": None,
        "description": "The requester's reply inbox (NATS request/reply).",
        "messages": {"IntakeReply": {"$ref": "#/components/messages/IntakeReply"}},
    }
    channels = document.get("channels", {})
    for operation in document.get("operations", {}).values():
        channel = channels.get(operation["channel"]["$ref"].rsplit("/", 1)[-1], {})
        if operation.get("action") != "receive" or not str(channel.get("address")).startswith(
            (subjects.INTAKE_REPORT_PREFIX, subjects.INTAKE_COMMAND_PREFIX)
        ):
            continue  # the events intake appends, and those it reacts to, get no reply
        operation["reply"] = {
            "channel": {"$ref": "#/channels/intake.reply"},
            "messages": [{"$ref": "#/channels/intake.reply/messages/IntakeReply"}],
        }
    # Sorted, so the committed document only changes when the surface does.
    for section in (document, components):
        for name in ("channels", "operations", "schemas", "messages"):
            if isinstance(section.get(name), dict):
                section[name] = dict(sorted(section[name].items()))
    return document
