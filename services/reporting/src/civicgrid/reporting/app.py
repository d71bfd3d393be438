"""Composition root of the reporting service: read model, projector, statistics API, gauges."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from civicgrid.city import default_config_dir, load_city
from civicgrid.city.city import City
from civicgrid.city.workcalendar import calendar_from_config
from civicgrid.events import streams, subjects
from civicgrid.events.projector import ProjectorMetrics
from civicgrid.reporting.admin_auth import admin_token as configured_token
from civicgrid.reporting.citymap import CityMap
from civicgrid.reporting.database import GenerationPointer, data_dir, database_url
from civicgrid.reporting.gauges import CommunityGauges
from civicgrid.reporting.http import install_api
from civicgrid.reporting.read_side import ReadSide
from civicgrid.reporting.web import install_dashboard
from civicgrid.servicekit.asyncapi import asyncapi_document
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings


def build(
    settings: ServiceSettings,
    *,
    city: City | None = None,
    db_url: str | None = None,
    data: Path | None = None,
    stream: str = streams.INCIDENTS,
    filter_subject: str = subjects.ALL_INCIDENT_EVENTS,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    gauges_refresh_s: float = 15.0,
    admin_token: str | None = None,
) -> Service:
    """``admin_token``: None reads CIVICGRID_REPORTING_ADMIN_TOKEN (unset: loopback only)."""
    city = city or load_city(settings.config_dir or default_config_dir())
    data = data or data_dir()
    service = Service(settings, title="civicgrid reporting")
    side = ReadSide(
        url=db_url or database_url(),
        pointer=GenerationPointer(data / "reporting-generation"),
        zone=city.calendar.zone,
        jetstream=lambda: service.jetstream,
        dead_letters=service.dead_letters,
        metrics=ProjectorMetrics.create(service.registry),
        stream=stream,
        filter_subject=filter_subject,
    )

    async def read_model_problem() -> str | None:
        return side.problem()

    gauges = CommunityGauges(side.engine, city.calendar.zone, now, gauges_refresh_s)
    gauges.register(service.registry)
    service.on_connected += [side.open, gauges.start]
    service.on_stopping += [gauges.stop, side.close]
    service.readiness_checks.append(read_model_problem)
    names = {c.id: c.name for c in city.communities} | {g.id: g.name for g in city.grids}
    names |= {u.id: u.name for u in city.units}
    communities = {c.id: [g.id for g in city.grids_in(c.id)] for c in city.communities}
    install_api(
        service.http,
        side,
        names,
        communities,
        now,
        calendar=calendar_from_config(city.calendar),
        admin_token=admin_token or configured_token(),
    )
    install_dashboard(service.http, CityMap(city))
    service.http.state.read_side = side
    return service


def asyncapi_schema() -> dict[str, Any]:
    """Reporting's AsyncAPI document: the shared one, plus the projector's read of the stream
    (not a durable consumer, so the shared generator does not know it)."""
    service = build(ServiceSettings.from_env("reporting", env={}))
    document = asyncapi_document(service)
    document["components"]["messages"]["reporting-projector:Event"] = {
        "title": "IncidentEvent",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/IncidentEvent"},
    }
    document["channels"]["reporting-projector"] = {
        "address": subjects.ALL_INCIDENT_EVENTS,
        "description": (
            f"projector: an ephemeral, ack-less pull consumer on stream {streams.INCIDENTS} from"
            " the read model's stored position + 1, in stream order; unreadable events go to"
            " dlq.reporting"
        ),
        "messages": {"Event": {"$ref": "#/components/messages/reporting-projector:Event"}},
    }
    document["operations"]["project_incident_events"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/reporting-projector"},
    }
    return document
