"""How incidents look in Open311 GeoReport v2 (JSON) and FixMyStreet's update extension.

Statuses: GeoReport's ``open``/``closed`` (resolved and closed incidents are ``closed``, as
the spec says "closed: it has been resolved"); updates use FixMyStreet's extended statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from civicgrid.events.base import IncidentEvent, UnitRef
from civicgrid.events.incident_events import (
    Accepted,
    Arrived,
    Assigned,
    CallbackRecorded,
    Closed,
    DeadlineExtended,
    Merged,
    Reassigned,
    Reopened,
    Reported,
    Resolved,
    Resumed,
    Returned,
    Suspended,
)
from civicgrid.intake.catalogue import Catalogue, Matter
from civicgrid.intake.domain.state import IncidentState, Stage

_STATUS_NOTES = {
    Stage.AWAITING_ASSIGNMENT: "received; being routed",
    Stage.ASSIGNED: "assigned",
    Stage.ACCEPTED: "accepted; being handled",
    Stage.ARRIVED: "handler on site",
    Stage.RESOLVED: "resolved",
    Stage.CLOSED: "closed",
}


def w3(moment: datetime | None) -> str | None:
    """The W3C profile of ISO 8601 the spec asks for, in UTC: 2010-01-01T00:00:00Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_of(state: IncidentState) -> str:
    return "open" if state.is_open else "closed"


def status_notes(state: IncidentState) -> str:
    if state.merged_into:
        return f"Duplicate request: merged into {state.merged_into}."
    note = _STATUS_NOTES.get(state.stage, "")
    if state.suspended:
        note = "paused, waiting for more information"
    return note


def _unit_name(unit: UnitRef | None) -> str | None:
    if unit is None:
        return None
    return unit.name or unit.id


class ServiceOut(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


def service_of(matter: Matter) -> ServiceOut:
    return ServiceOut(
        service_code=matter.code,
        service_name=matter.name,
        description=matter.name_en,
        metadata=bool(matter.attributes),
        type="realtime",
        keywords=", ".join(matter.keywords),
        group=matter.group,
    )


class AttributeValueOut(BaseModel):
    key: str
    name: str


class AttributeOut(BaseModel):
    variable: bool
    code: str
    datatype: str
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[AttributeValueOut]


class ServiceDefinitionOut(BaseModel):
    service_code: str
    attributes: list[AttributeOut]


def definition_of(matter: Matter) -> ServiceDefinitionOut:
    return ServiceDefinitionOut(
        service_code=matter.code,
        attributes=[
            AttributeOut(
                variable=attribute.variable,
                code=attribute.code,
                datatype=attribute.datatype,
                required=attribute.required,
                datatype_description=attribute.datatype_description,
                order=attribute.order or order,
                description=attribute.description,
                values=[AttributeValueOut(key=v.key, name=v.name) for v in attribute.values],
            )
            for order, attribute in enumerate(matter.attributes, start=1)
        ],
    )


class ServiceRequestOut(BaseModel):
    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str | None
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


def request_of(state: IncidentState, catalogue: Catalogue) -> ServiceRequestOut:
    report = state.report
    matter = catalogue.matter(state.category)
    lon, lat = (report.location.lon, report.location.lat) if report else (None, None)
    if lon is not None and lat is not None:
        # About a centimetre: more digits would be a converted (GCJ-02) report's noise.
        lon, lat = round(lon, 7), round(lat, 7)
    return ServiceRequestOut(
        service_request_id=state.incident_id,
        status=status_of(state),
        status_notes=status_notes(state) or None,
        service_name=matter.name if matter else None,
        service_code=state.category,
        description=(report.description or None) if report else None,
        agency_responsible=_unit_name(state.lead_unit),
        service_notice=None,
        requested_datetime=w3(state.reported_at),
        updated_datetime=w3(state.updated_at),
        expected_datetime=w3(state.resolve_due_at),
        address=report.address if report else None,
        address_id=None,
        zipcode=None,
        lat=lat,
        long=lon,
        media_url=report.media_urls[0] if report and report.media_urls else None,
    )


class RequestUpdateOut(BaseModel):
    """FixMyStreet's ``request_update``."""

    update_id: str
    service_request_id: str
    status: str
    updated_datetime: str
    description: str
    media_url: str


@dataclass(frozen=True, slots=True)
class Update:
    update_id: str
    incident_id: str
    status: str
    description: str
    updated_at: datetime

    def out(self) -> RequestUpdateOut:
        return RequestUpdateOut(
            update_id=self.update_id,
            service_request_id=self.incident_id,
            status=self.status,
            updated_datetime=w3(self.updated_at) or "",
            description=self.description,
            media_url="",
        )


def update_for(event: IncidentEvent) -> Update | None:
    """The public update an event makes, if any (SLA bookkeeping makes none)."""
    described = _describe(event)
    if described is None:
        return None
    status, description = described
    return Update(event.event_id, event.incident_id, status, description, event.occurred_at)


def _describe(event: IncidentEvent) -> tuple[str, str] | None:
    match event:
        case Reported():
            return "open", f"Reported via {event.report.channel.value}"
        case Merged(from_incident_id=str(source)):
            return "open", f"Request {source} was merged into this one"
        case Merged():
            return "open", "Another report of the same problem joined this request"
        case Assigned():
            return "action_scheduled", f"Assigned to {_unit_name(event.lead_unit)}"
        case Accepted():
            return "in_progress", f"Accepted by {_unit_name(event.unit)}"
        case Arrived():
            return "in_progress", "Handler on site"
        case Returned():
            return "internal_referral", "Returned by the assignee; being routed again"
        case Suspended():
            return "investigating", "Paused, waiting for more information"
        case Resumed():
            return "in_progress", "Resumed"
        case DeadlineExtended():
            return "in_progress", f"Expected by {w3(event.new_due_at)}"
        case Resolved():
            return "fixed", f"Resolved: {event.resolution}"
        case CallbackRecorded():
            return "fixed", "Citizen called back: " + (
                "satisfied" if event.satisfied else "not satisfied"
            )
        case Closed(merged_into=str(target)):
            return "duplicate", f"Merged into request {target}"
        case Closed():
            return "closed", "Closed"
        case Reopened():
            return "reopen", "Reopened"
        case Reassigned():
            return "internal_referral", "Reassigned by the command centre"
    return None


class PostedOut(BaseModel):
    """What ``POST requests`` answers: the new (or joined) request."""

    service_request_id: str
    service_notice: str | None
    account_id: str | None


class TokenOut(BaseModel):
    service_request_id: str
    token: str


class UpdatePostedOut(BaseModel):
    """What FixMyStreet's ``POST servicerequestupdates`` answers: the update's id here."""

    update_id: str


class Open311ErrorOut(BaseModel):
    """One entry of GeoReport's error body (``<errors><error>`` in XML)."""

    code: int
    description: str


class EndpointOut(BaseModel):
    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class DiscoveryOut(BaseModel):
    """GeoReport v2 service discovery."""

    changeset: str
    contact: str
    key_service: str
    endpoints: list[EndpointOut]


class RequestForm(BaseModel):
    """``POST requests``: the spec's fields (form-encoded, or JSON with the same names).
    Multi-value attributes: ``attribute[code][]=v`` (form) or ``{"attribute": {...}}`` (JSON).
    Only documents the body: the route reads it itself, to accept both encodings."""

    model_config = ConfigDict(extra="allow")  # attribute[code] fields of a form

    api_key: str | None = None
    jurisdiction_id: str | None = None
    service_code: str
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    description: str | None = Field(default=None, max_length=4000)
    media_url: str | None = None
    token: str | None = None
    attribute: dict[str, str | list[str]] | None = Field(
        default=None, description="JSON only: the service definition's answers by code"
    )


class UpdateForm(BaseModel):
    """FixMyStreet's ``POST servicerequestupdates`` fields."""

    api_key: str | None = None
    jurisdiction_id: str | None = None
    service_request_id: str
    update_id: str | None = None
    status: str
    updated_datetime: str | None = None
    description: str | None = None
    media_url: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
