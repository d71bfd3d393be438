"""Open311 GeoReport v2 under /open311/v2, in JSON and XML (chosen by the extension, as the
spec says), FixMyStreet's servicerequestupdates (GET, and POST for a citizen's comment or "still
not fixed"), and GeoReport's service discovery at /open311/discovery.{json,xml}.

Reading needs no key, as the spec says; ``POST requests`` needs an ``api_key`` (form field,
query parameter or ``X-API-Key`` header) allowed on the ``open311`` channel. The body is
form-encoded as the spec says (``attribute[code]=v``, ``attribute[code][]=v`` for multi-value
lists), or JSON with the same field names.

``jurisdiction_id`` may be omitted; when given it must be the city's own id, or the answer is
404 naming the id this endpoint serves (silently accepting any value hides client mistakes).

``lat``/``long`` are WGS84, as the spec says, and so is everything civicgrid stores and
serves. Without them, ``address_string`` must name a place in the city's gazetteer
(``gazetteer``: communities, grids, named places); otherwise 400 lists the closest names.
``address_id`` is not geocoded.

Extension: a client may send ``token`` with its POST. A retried POST with the same token
returns the same request and writes nothing, and ``tokens/{token}`` resolves it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from civicgrid.events.ids import new_event_id
from civicgrid.intake.access import Gate
from civicgrid.intake.catalogue import Catalogue
from civicgrid.intake.domain import identity
from civicgrid.intake.domain.commands import Callback, Command, Reopen
from civicgrid.intake.domain.state import IncidentState, Stage, fold
from civicgrid.intake.errors import (
    Problem,
    Refused,
    bad_request,
    forbidden,
    not_found,
    problems_from,
    quoted,
    rejected,
)
from civicgrid.intake.handlers import Intake
from civicgrid.intake.index import RequestQuery
from civicgrid.intake.open311 import (
    DiscoveryOut,
    EndpointOut,
    Open311ErrorOut,
    PostedOut,
    RequestForm,
    RequestUpdateOut,
    ServiceDefinitionOut,
    ServiceOut,
    ServiceRequestOut,
    TokenOut,
    UpdateForm,
    UpdatePostedOut,
    definition_of,
    request_of,
    service_of,
)
from civicgrid.intake.reports import Open311ClientReport
from civicgrid.intake.web.open311_format import XML_MEDIA_TYPE, Format, respond

MAX_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
MAX_IDS = 100
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-30T00:00:00Z"  # when this endpoint's surface last changed
# FixMyStreet's update statuses that mean "not fixed": on a resolved request, a dissatisfied
# callback (which reopens it); on a closed one, a reopen.
_NOT_FIXED = frozenset({"open", "reopen", "investigating", "in_progress", "action_scheduled"})
_FIXED = frozenset({"fixed", "closed"})
_ERROR_TEXT = {
    400: "bad input: a field is missing or invalid (the description names it)",
    403: "missing, unknown or insufficient api_key",
    404: "not found: unknown id, service_code, jurisdiction_id or extension",
    409: "the update does not fit the request's state",
    413: "body too large",
    429: "rate limit reached (see Retry-After)",
    503: "intake cannot complete this now; retry",
}
_READ_ERRORS = (400, 404, 503)
_WRITE_ERRORS = (400, 403, 404, 409, 413, 429, 503)
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


def _documented(
    ok: Any, *errors: int, ok_statuses: tuple[int, ...] = (200,)
) -> dict[int | str, dict[str, Any]]:
    """Responses for OpenAPI: each status in JSON (the model) and XML (same elements)."""
    xml = {XML_MEDIA_TYPE.split(";")[0]: {"schema": {"type": "string"}}}
    documented: dict[int | str, dict[str, Any]] = {
        status: {"model": ok, "description": "OK", "content": xml} for status in ok_statuses
    }
    for status in errors:
        documented[status] = {
            "model": list[Open311ErrorOut],
            "description": _ERROR_TEXT[status],
            "content": xml,
        }
    return documented


def _body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema},
                "application/json": {"schema": schema},
            },
        }
    }


_FORM_BODY = _body(RequestForm)
_UPDATE_BODY = _body(UpdateForm)


def open311_router(intake: Intake, gate: Gate, catalogue: Catalogue) -> APIRouter:
    # async: FastAPI runs a plain def dependency on a worker thread, a thread hop per request
    # (the profile under load showed it).
    async def check_jurisdiction(
        jurisdiction_id: Annotated[
            str | None,
            Query(description="optional; when given, the city's own id (see discovery)"),
        ] = None,
    ) -> None:
        _jurisdiction(jurisdiction_id, catalogue)

    router = APIRouter(
        prefix="/open311/v2", tags=["open311"], dependencies=[Depends(check_jurisdiction)]
    )

    @router.get(
        "/services.{format}",
        response_model=list[ServiceOut],
        responses=_documented(list[ServiceOut], *_READ_ERRORS),
    )
    async def services(format: Format) -> Response:
        """The service list: the city's matter list (事项清单)."""
        found = [service_of(matter) for matter in catalogue.matters]
        return respond(format, found, root="services", item="service")

    @router.get(
        "/services/{service_code}.{format}",
        response_model=ServiceDefinitionOut,
        responses=_documented(ServiceDefinitionOut, *_READ_ERRORS),
    )
    async def service_definition(service_code: str, format: Format) -> Response:
        """A service's attributes (its definition)."""
        matter = catalogue.matter(service_code)
        if matter is None:
            raise not_found(f"service_code {quoted(service_code)} was not found", "service_code")
        return respond(format, definition_of(matter), root="service_definition", item=None)

    @router.post(
        "/requests.{format}",
        status_code=201,
        response_model=list[PostedOut],
        responses=_documented(list[PostedOut], *_WRITE_ERRORS, ok_statuses=(200, 201)),
        openapi_extra=_FORM_BODY,
    )
    async def post_request(request: Request, format: Format) -> Response:
        """Create a service request (form-encoded as the spec says, or JSON). 201 with the
        new ``service_request_id``; 200 when it joined an open duplicate or repeats a token.
        Without lat/long, ``address_string`` must name a place in the city's gazetteer."""
        form = await _read_form(request)
        _jurisdiction(form.fields.get("jurisdiction_id"), catalogue)
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
            PostedOut(
                service_request_id=outcome.incident_id, service_notice=notice, account_id=None
            )
        ]
        status = 201 if outcome.outcome == "created" else 200
        return respond(format, body, root="service_requests", item="request", status_code=status)

    @router.get(
        "/requests.{format}",
        response_model=list[ServiceRequestOut],
        responses=_documented(list[ServiceRequestOut], *_READ_ERRORS),
    )
    async def get_requests(
        format: Format,
        service_request_id: str | None = None,
        service_code: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        status: str | None = None,
    ) -> Response:
        """Requests reported within [start_date, end_date] (default: the last 90 days, at
        most 90 days), newest first, at most 1000. ``service_request_id`` overrides the rest."""
        found = await _requests(
            intake, catalogue, service_request_id, service_code, start_date, end_date, status
        )
        return respond(format, found, root="service_requests", item="request")

    @router.get(
        "/requests/{service_request_id}.{format}",
        response_model=list[ServiceRequestOut],
        responses=_documented(list[ServiceRequestOut], *_READ_ERRORS),
    )
    async def get_request(service_request_id: str, format: Format) -> Response:
        """One request."""
        state = await _state(intake, service_request_id) if _ID.match(service_request_id) else None
        if state is None:
            raise not_found(f"service_request_id {quoted(service_request_id)} was not found")
        found = [request_of(state, catalogue)]
        return respond(format, found, root="service_requests", item="request")

    @router.get(
        "/tokens/{token}.{format}",
        response_model=list[TokenOut],
        responses=_documented(list[TokenOut], *_READ_ERRORS),
    )
    async def get_token(token: str, format: Format) -> Response:
        """The request created with a client ``token`` (see POST requests)."""
        key = identity.token_key(token)
        incident_id = intake.index.incident_for_key(key)
        if incident_id is None and re.fullmatch(r"[\x21-\x7e]{1,128}", token):
            derived = identity.incident_id_for(key)
            if await _state(intake, derived) is not None:
                incident_id = derived
        if incident_id is None:
            raise not_found("token was not found", "token")
        found = [TokenOut(service_request_id=incident_id, token=token)]
        return respond(format, found, root="service_requests", item="request")

    @router.get(
        "/servicerequestupdates.{format}",
        response_model=list[RequestUpdateOut],
        responses=_documented(list[RequestUpdateOut], *_READ_ERRORS),
    )
    async def get_updates(
        format: Format, start_date: str | None = None, end_date: str | None = None
    ) -> Response:
        """FixMyStreet's extension: updates to requests within [start_date, end_date]
        (default: the last 90 days), oldest first, at most 1000; statuses are FixMyStreet's
        extended ones (open, action_scheduled, in_progress, fixed, closed, duplicate, ...)."""
        start, end = _window(start_date, end_date, intake.clock())
        found = [update.out() for update in intake.index.updates(start, end, MAX_REQUESTS)]
        # FixMyStreet's root element for the list (its answer to a POST is singular).
        return respond(format, found, root="service_requests_updates", item="request_update")

    @router.post(
        "/servicerequestupdates.{format}",
        response_model=list[UpdatePostedOut],
        responses=_documented(list[UpdatePostedOut], *_WRITE_ERRORS),
        openapi_extra=_UPDATE_BODY,
    )
    async def post_update(request: Request, format: Format) -> Response:
        """FixMyStreet's extension: a citizen's update. On a resolved request, ``status``
        open ("still not fixed") records a dissatisfied callback, which reopens it, and
        fixed/closed a satisfied one; on a closed request, open reopens it. A comment on a
        request that is still being handled is refused with 409 (intake keeps no comments).
        The key needs the ``callback`` and ``reopen`` commands."""
        form = await _read_form(request)
        _jurisdiction(form.fields.get("jurisdiction_id"), catalogue)
        key = form.fields.get("api_key") or request.query_params.get("api_key")
        key = key or request.headers.get("x-api-key")
        holder = gate.keys.identify(key)  # 403 for a missing or unknown key first
        if not (holder.may_command("callback") or holder.may_command("reopen")):
            raise forbidden("this key may not post updates (it needs callback or reopen)")
        system = holder.system
        update_ref = form.fields.get("update_id", "").strip()
        if update_ref and not re.fullmatch(r"[\x21-\x7e]{1,64}", update_ref):
            raise bad_request("must be 1-64 printable ASCII characters", "update_id")
        command_id = f"open311-update:{update_ref}" if update_ref else new_event_id()
        causation = identity.command_causation(system, command_id)
        written = await _written_by(intake, form.fields, causation)
        if not written:  # not a retry of an update already carried out
            incident_id, command = await _update_command(intake, form.fields)
            name = "callback" if isinstance(command, Callback) else "reopen"
            rights = gate.for_command(key, name)
            await intake.command(incident_id, command, system=rights.system, command_id=command_id)
            written = await _written_by(intake, form.fields, causation)
        body = [UpdatePostedOut(update_id=written[0] if written else command_id)]
        return respond(format, body, root="service_request_updates", item="request_update")

    return router


def discovery_router(catalogue: Catalogue) -> APIRouter:
    router = APIRouter(prefix="/open311", tags=["open311"])

    @router.get(
        "/discovery.{format}",
        response_model=DiscoveryOut,
        responses=_documented(DiscoveryOut, 404, 503),
    )
    async def discovery(request: Request, format: Format) -> Response:
        """GeoReport v2 service discovery: where this city's endpoint is and what it speaks."""
        base = str(request.base_url).rstrip("/")
        document = DiscoveryOut(
            changeset=CHANGESET,
            contact="The city's 12345 hotline operations team",
            key_service="API keys are issued by the city's platform operators",
            endpoints=[
                EndpointOut(
                    specification=SPECIFICATION,
                    url=f"{base}/open311/v2",
                    changeset=CHANGESET,
                    type="production",
                    formats=["text/xml", "application/json"],
                )
            ],
        )
        return respond(format, document, root="discovery", item=None)

    return router


def _jurisdiction(given: str | None, catalogue: Catalogue) -> None:
    if given is None or given == "" or given == catalogue.jurisdiction_id:
        return
    raise not_found(
        f"{quoted(given)} is not served here; this endpoint serves only"
        f" {catalogue.jurisdiction_id!r} (or omit jurisdiction_id)",
        "jurisdiction_id",
    )


async def _requests(
    intake: Intake,
    catalogue: Catalogue,
    service_request_id: str | None,
    service_code: str | None,
    start_date: str | None,
    end_date: str | None,
    status: str | None,
) -> list[ServiceRequestOut]:
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


async def _written_by(intake: Intake, fields: dict[str, str], causation: str) -> list[str]:
    """The ids of the events an update (its causation) wrote to its request, if any."""
    incident_id = fields.get("service_request_id", "").strip()
    if not _ID.match(incident_id):
        return []
    history = await intake.store().load(incident_id)
    return [s.event.event_id for s in history.events if s.event.causation_id == causation]


async def _update_command(intake: Intake, fields: dict[str, str]) -> tuple[str, Command]:
    """The existing command a FixMyStreet update maps to (see ``post_update``)."""
    incident_id = fields.get("service_request_id", "").strip()
    if not incident_id:
        raise bad_request("service_request_id was not provided", "service_request_id")
    status = fields.get("status", "").strip().lower()
    if not status:
        raise bad_request("status was not provided (open, fixed or closed)", "status")
    if status not in _NOT_FIXED | _FIXED:
        raise bad_request(
            "must be one of " + ", ".join(sorted(_NOT_FIXED | _FIXED)) + " (any case)", "status"
        )
    state = await _state(intake, incident_id) if _ID.match(incident_id) else None
    if state is None:
        raise not_found(f"service_request_id {quoted(incident_id)} was not found")
    description = fields.get("description", "").strip()
    try:
        if state.stage is Stage.RESOLVED and state.callback_satisfied is None:
            satisfied = status in _FIXED
            return incident_id, Callback(
                satisfied=satisfied, rating=5 if satisfied else 1, comment=description
            )
        if state.stage in (Stage.RESOLVED, Stage.CLOSED) and status in _NOT_FIXED:
            reason = description or "the citizen reports it is not fixed"
            return incident_id, Reopen(reason=reason)
    except ValidationError as exc:
        problems = [Problem("description", p.reason) for p in problems_from(exc)]
        raise Refused(400, "bad_request", problems) from exc
    if state.stage in (Stage.RESOLVED, Stage.CLOSED):
        raise rejected(f"the request is already {'resolved' if status in _FIXED else 'closed'}")
    raise rejected(
        "the request is still being handled: intake records an update only after it was"
        " resolved (a callback) or closed (a reopen)"
    )


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
    except UnicodeDecodeError as exc:
        raise bad_request("the body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            f" (character {exc.pos})"
        ) from exc
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
        raise not_found(f"service_code {quoted(code)} was not found", "service_code")
    if fields.get("lat") or fields.get("long"):
        location = _location(fields.get("lat", ""), fields.get("long", ""))
    else:
        location = _place_named(fields.get("address_string", ""), catalogue)
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
        "location": location,
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


def _place_named(address: str, catalogue: Catalogue) -> dict[str, float]:
    """A report without lat/long is located by the place its address_string names."""
    if not address.strip():
        raise bad_request(
            "lat and long are required, or an address_string naming a community, grid or"
            " named place of the city",
            "lat/long",
        )
    place = catalogue.gazetteer.resolve(address)
    if place is not None:
        return {"lon": place.lon, "lat": place.lat}
    matches = catalogue.gazetteer.close_matches(address)
    hint = (
        "close matches: " + ", ".join(matches)
        if matches
        else "name a community, grid or named place of the city, or send lat and long"
    )
    raise bad_request(f"names no place in the city's gazetteer; {hint}", "address_string")


def _location(lat_text: str, lon_text: str) -> dict[str, float]:
    """Open311's lat/long are WGS84, as events are."""
    problems = []
    coordinates: dict[str, float] = {}
    for field, text, low, high in (("lat", lat_text, -90, 90), ("long", lon_text, -180, 180)):
        if not text.strip():
            problems.append(Problem(field, "is required: send both lat and long"))
            continue
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
    return {"lon": coordinates["long"], "lat": coordinates["lat"]}


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
