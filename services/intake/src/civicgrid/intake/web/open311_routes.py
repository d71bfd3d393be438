"""Open311 GeoReport v2 (JSON) under /open311/v2, plus FixMyStreet's servicerequestupdates.

Reading needs no key, as the spec says; ``POST requests.json`` needs an ``api_key`` (form
field, query parameter or ``X-API-Key`` header) allowed on the ``open311`` channel. The body
is form-encoded as the spec says (``attribute[code]=v``, ``attribute[code][]=v`` for
multi-value lists), or JSON with the same field names.

``lat``/``long`` are WGS84, as the spec says; when the city's datum is GCJ-02 (the shipped
city) they are converted on the way in and back on the way out (``datum``). Only lat/long
locate a request: ``address_string`` is kept as the address, and neither it nor ``address_id``
is geocoded.

Extension: a client may send ``token`` with its POST. A retried POST with the same token
returns the same request and writes nothing, and ``tokens/{token}.json`` resolves it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from civicgrid.intake.access import Gate
from civicgrid.intake.catalogue import GCJ02, Catalogue
from civicgrid.intake.datum import wgs84_to_gcj02
from civicgrid.intake.domain import identity
from civicgrid.intake.domain.state import IncidentState, fold
from civicgrid.intake.errors import Problem, Refused, bad_request, not_found, problems_from
from civicgrid.intake.handlers import Intake
from civicgrid.intake.index import RequestQuery
from civicgrid.intake.open311 import (
    RequestUpdateOut,
    ServiceDefinitionOut,
    ServiceOut,
    ServiceRequestOut,
    definition_of,
    request_of,
    service_of,
)
from civicgrid.intake.reports import Open311ClientReport

MAX_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
MAX_IDS = 100
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]{1,64})\](\[\])?$")
# Where a report field came from in Open311's names, for error messages.
_OPEN311_NAMES = {
    "category": "service_code",
    "location.lat": "lat",
    "location.lon": "long",
    "location": "lat/long",
    "address": "address_string",
    "reporter.name": "first_name/last_name",
    "reporter.phone": "phone",
    "reporter.email": "email",
    "media_urls": "media_url",
    "media_urls.0": "media_url",
}


@dataclass(frozen=True)
class Form:
    fields: dict[str, str]
    attributes: dict[str, str | list[str]]


def open311_router(intake: Intake, gate: Gate, catalogue: Catalogue) -> APIRouter:
    router = APIRouter(prefix="/open311/v2", tags=["open311"])

    @router.get("/services.json", response_model=list[ServiceOut])
    async def services() -> list[ServiceOut]:
        """The service list: the city's matter list (事项清单)."""
        return [service_of(matter) for matter in catalogue.matters]

    @router.get("/services/{service_code}.json", response_model=ServiceDefinitionOut)
    async def service_definition(service_code: str) -> ServiceDefinitionOut:
        matter = catalogue.matter(service_code)
        if matter is None:
            raise not_found(f"service_code {service_code!r} was not found", "service_code")
        return definition_of(matter)

    @router.post("/requests.json", status_code=201)
    async def post_request(request: Request) -> JSONResponse:
        """Create a service request (form-encoded as the spec says, or JSON). 201 with the
        new ``service_request_id``; 200 when it joined an open duplicate or repeats a token."""
        form = await _read_form(request)
        key = form.fields.get("api_key") or request.query_params.get("api_key")
        rights = gate.for_report(key or request.headers.get("x-api-key"), "open311")
        report = _report_from(form, catalogue)
        token = report.token
        idempotency = request.headers.get("idempotency-key")
        if idempotency is not None and not re.fullmatch(r"[\x21-\x7e]{1,80}", idempotency):
            raise bad_request("must be 1-80 printable ASCII characters", "Idempotency-Key")
        key_used: str | None
        if idempotency:
            key_used = identity.header_key(rights.system, idempotency)
        else:
            key_used = identity.token_key(token) if token else None
        outcome = await intake.report(report, system=rights.system, key=key_used)
        notice = None
        if outcome.outcome == "merged":
            notice = "This problem was already reported; your report joined that request."
        body = [
            {
                "service_request_id": outcome.incident_id,
                "service_notice": notice,
                "account_id": None,
            }
        ]
        return JSONResponse(body, status_code=201 if outcome.outcome == "created" else 200)

    @router.get("/requests.json", response_model=list[ServiceRequestOut])
    async def get_requests(
        request: Request,
        service_request_id: str | None = None,
        service_code: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        status: str | None = None,
    ) -> list[ServiceRequestOut]:
        """Requests reported within [start_date, end_date] (default: the last 90 days, at
        most 90 days), newest first, at most 1000. ``service_request_id`` overrides the rest."""
        if service_request_id:
            ids = _comma_list(service_request_id, "service_request_id")
            if len(ids) > MAX_IDS or not all(_ID.match(i) for i in ids):
                raise bad_request(f"up to {MAX_IDS} valid ids", "service_request_id")
            states = [state for i in ids if (state := await _state(intake, i)) is not None]
            return [request_of(state, catalogue) for state in states]
        start, end = _window(start_date, end_date, intake.clock())
        query = RequestQuery(
            start=start,
            end=end,
            service_codes=frozenset(_comma_list(service_code, "service_code"))
            if service_code
            else None,
            statuses=_statuses(status),
            limit=MAX_REQUESTS,
        )
        return [request_of(state, catalogue) for state in intake.index.requests(query)]

    @router.get("/requests/{service_request_id}.json", response_model=list[ServiceRequestOut])
    async def get_request(service_request_id: str) -> list[ServiceRequestOut]:
        state = await _state(intake, service_request_id) if _ID.match(service_request_id) else None
        if state is None:
            raise not_found(f"service_request_id {service_request_id!r} was not found")
        return [request_of(state, catalogue)]

    @router.get("/tokens/{token}.json")
    async def get_token(token: str) -> list[dict[str, str]]:
        """The request created with a client ``token`` (see POST requests.json)."""
        key = identity.token_key(token)
        incident_id = intake.index.incident_for_key(key)
        if incident_id is None and re.fullmatch(r"[\x21-\x7e]{1,128}", token):
            derived = identity.incident_id_for(key)
            if await _state(intake, derived) is not None:
                incident_id = derived
        if incident_id is None:
            raise not_found("token was not found", "token")
        return [{"service_request_id": incident_id, "token": token}]

    @router.get("/servicerequestupdates.json", response_model=list[RequestUpdateOut])
    async def get_updates(
        start_date: str | None = None, end_date: str | None = None
    ) -> list[RequestUpdateOut]:
        """FixMyStreet's extension: updates to requests within [start_date, end_date]
        (default: the last 90 days), oldest first, at most 1000; statuses are FixMyStreet's
        extended ones (open, action_scheduled, in_progress, fixed, closed, duplicate, ...)."""
        start, end = _window(start_date, end_date, intake.clock())
        return [update.out() for update in intake.index.updates(start, end, MAX_REQUESTS)]

    return router


async def _state(intake: Intake, incident_id: str) -> IncidentState | None:
    """From the store, not the index: a request is visible the moment it was written."""
    history = await intake.store().load(incident_id)
    state = fold(incident_id, history)
    return state if state.exists else None


async def _read_form(request: Request) -> Form:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type == "application/json":
        return _json_form(body)
    if content_type == "multipart/form-data":
        try:
            parsed = await request.form(max_files=0, max_fields=200)
        except Exception as exc:
            raise bad_request("the multipart body cannot be read") from exc
        return _pairs_form([(k, v) for k, v in parsed.multi_items() if isinstance(v, str)])
    if content_type not in ("application/x-www-form-urlencoded", ""):
        raise bad_request("send application/x-www-form-urlencoded (or JSON)")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request("the body is not UTF-8 form data") from exc
    return _pairs_form(pairs)


def _json_form(body: bytes) -> Form:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object")
    fields: dict[str, str] = {}
    attributes: dict[str, str | list[str]] = {}
    for name, value in data.items():
        if name == "attribute" and isinstance(value, dict):
            for code, answer in value.items():
                attributes[str(code)] = _answer(answer, f"attribute[{code}]")
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            fields[name] = str(value)
        elif value is not None:
            raise bad_request("must be a string or a number", name)
    return Form(fields, attributes)


def _answer(answer: Any, field: str) -> str | list[str]:
    if isinstance(answer, list) and all(isinstance(a, str | int | float) for a in answer):
        return [str(a) for a in answer]
    if isinstance(answer, str | int | float | bool):
        return str(answer).lower() if isinstance(answer, bool) else str(answer)
    raise bad_request("must be a value or a list of values", field)


def _pairs_form(pairs: list[tuple[str, str]]) -> Form:
    fields: dict[str, str] = {}
    attributes: dict[str, str | list[str]] = {}
    for name, value in pairs:
        attribute = _ATTRIBUTE.match(name)
        if attribute is None:
            fields.setdefault(name, value)
            continue
        code, many = attribute.group(1), attribute.group(2)
        if many:
            existing = attributes.get(code)
            values = existing if isinstance(existing, list) else []
            attributes[code] = [*values, value]
        else:
            attributes.setdefault(code, value)
    return Form(fields, attributes)


def _report_from(form: Form, catalogue: Catalogue) -> Open311ClientReport:
    fields = form.fields
    code = fields.get("service_code", "").strip()
    if not code:
        raise bad_request("service_code was not provided", "service_code")
    if catalogue.matter(code) is None:
        raise not_found(f"service_code {code!r} was not found", "service_code")
    if not fields.get("lat") or not fields.get("long"):
        raise bad_request(
            "lat and long are required: this endpoint does not geocode address_string"
            " or address_id",
            "lat/long",
        )
    name = " ".join(p for p in (fields.get("first_name"), fields.get("last_name")) if p)
    reporter = {
        key: value
        for key, value in (
            ("name", name.strip()),
            ("phone", fields.get("phone")),
            ("email", fields.get("email")),
        )
        if value
    }
    candidate: dict[str, Any] = {
        "category": code,
        "description": fields.get("description", ""),
        "location": _city_datum(fields["lat"], fields["long"], catalogue),
        "attributes": form.attributes,
    }
    if fields.get("address_string"):
        candidate["address"] = fields["address_string"]
    if reporter:
        candidate["reporter"] = reporter
    if fields.get("media_url"):
        candidate["media_urls"] = [fields["media_url"]]
    if fields.get("token"):
        candidate["token"] = fields["token"]
    try:
        return Open311ClientReport.model_validate(candidate)
    except ValidationError as exc:
        problems = [
            Problem(_OPEN311_NAMES.get(p.field or "", p.field), p.reason)
            for p in problems_from(exc)
        ]
        raise Refused(400, "bad_request", problems) from exc


def _city_datum(lat_text: str, lon_text: str, catalogue: Catalogue) -> dict[str, float]:
    """Open311's lat/long are WGS84; events hold the city's datum."""
    problems = []
    coordinates: dict[str, float] = {}
    for field, text, low, high in (("lat", lat_text, -90, 90), ("long", lon_text, -180, 180)):
        try:
            value = float(text)
        except ValueError:
            problems.append(Problem(field, "must be a number"))
            continue
        if not low <= value <= high:  # also refuses nan
            problems.append(Problem(field, f"must be between {low} and {high}"))
        coordinates[field] = value
    if problems:
        raise Refused(400, "bad_request", problems)
    lon, lat = coordinates["long"], coordinates["lat"]
    if catalogue.datum == GCJ02:
        lon, lat = wgs84_to_gcj02(lon, lat)
    return {"lon": lon, "lat": lat}


def _comma_list(value: str, field: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise bad_request("is empty", field)
    return items


def _statuses(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    statuses = frozenset(_comma_list(value, "status"))
    if not statuses <= {"open", "closed"}:
        raise bad_request("must be open, closed or both", "status")
    return statuses


def _window(
    start_text: str | None, end_text: str | None, now: datetime
) -> tuple[datetime, datetime]:
    start = _w3(start_text, "start_date")
    end = _w3(end_text, "end_date")
    if start is None and end is None:
        end = now
    if end is None:
        assert start is not None
        end = start + MAX_SPAN
    if start is None:
        start = end - MAX_SPAN
    if end < start:
        raise bad_request("end_date is before start_date", "end_date")
    if end - start > MAX_SPAN:
        raise bad_request("the range may not span more than 90 days", "start_date")
    return start, end


def _w3(text: str | None, field: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_request("must be a W3C date-time, e.g. 2010-01-01T00:00:00Z", field) from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise bad_request("must include a time zone (Z or +HH:MM)", field)
    return moment
