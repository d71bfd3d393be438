"""The native API under /api/v1: reports, commands on an incident, an incident's history.

No ``from __future__ import annotations`` here: FastAPI reads these annotations at runtime,
and the command routes are built in a loop with the body model filled in.
"""

import inspect
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Response
from fastapi.security import APIKeyHeader

from civicgrid.events.ids import new_event_id
from civicgrid.intake.access import Gate, Rights
from civicgrid.intake.domain import identity
from civicgrid.intake.domain.commands import COMMANDS, Command, CommandName, IncidentId
from civicgrid.intake.errors import ErrorBody, Problem, invalid
from civicgrid.intake.handlers import Intake
from civicgrid.intake.receipts import (
    CommandReceipt,
    IncidentOut,
    ReportReceipt,
    command_receipt,
    incident_out,
    report_receipt,
)
from civicgrid.intake.reports import AnyReport, ReportIn

API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="Your system's API key")
IDEMPOTENCY_PATTERN = r"^[\x21-\x7e]{1,80}$"

ApiKey = Annotated[str | None, Depends(API_KEY)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_PATTERN,
        description="Makes a retry safe: the same key returns the same result, writes nothing",
    ),
]
CorrelationId = Annotated[
    str | None, Header(alias="X-Correlation-ID", pattern=r"^[\x21-\x7e]{1,128}$")
]
IncidentPath = Annotated[IncidentId, Path(description="The incident id")]

_REFUSAL_TEXT = {
    400: "the body is not readable (not JSON, or JSON in the wrong shape)",
    401: "missing or unknown API key",
    403: "this key may not do this",
    404: "the incident does not exist",
    413: "body too large",
    422: "a field is invalid (each problem names its field)",
    429: "rate limit reached (see Retry-After)",
    503: "intake cannot complete this now (NATS unreachable); retry",
}
_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _REFUSAL_TEXT.items()
}


# What a command's 409 and 422 mean, where a command has its own reasons.
_COMMAND_REFUSALS: dict[CommandName, dict[int, str]] = {
    CommandName.RECLASSIFY: {
        409: "the unit is not the command centre; the incident is resolved, closed or merged;"
        " or it already runs under that SLA class",
        422: "sla_class is not a class of the city's sla.yaml (the error lists the allowed"
        " ones), a field is invalid, or the Idempotency-Key was used for another body"
        " (code idempotency_key_reused)",
    },
}


def report_key(rights: Rights, header: str | None, report: ReportIn) -> str | None:
    explicit = header or report.idempotency_key
    if explicit:
        return identity.header_key(rights.system, explicit)
    token = getattr(report, "token", None)
    if token:
        return identity.token_key(token)
    if report.external_ref:
        return identity.reference_key(report.channel_of().value, report.external_ref)
    return None


def command_id_of(header: str | None, command: Command) -> str:
    if header and command.command_id and header != command.command_id:
        raise invalid([Problem("command_id", "differs from the Idempotency-Key header")])
    return header or command.command_id or new_event_id()


def native_router(intake: Intake, gate: Gate) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["native"], responses=_REFUSALS)

    async def authenticated(api_key: ApiKey) -> str:  # async: no worker thread per request
        gate.keys.identify(api_key)  # 401 before anything else is looked at
        assert api_key is not None
        return api_key

    authenticated_key = Annotated[str, Depends(authenticated)]

    @router.post("/reports", status_code=201, responses={200: {"model": ReportReceipt}})
    async def post_report(
        report: Annotated[AnyReport, Body()],
        response: Response,
        api_key: authenticated_key,
        idempotency_key: IdempotencyKey = None,
        correlation_id: CorrelationId = None,
    ) -> ReportReceipt:
        """Report an incident on any channel. 201 when a new incident is opened; 200 when the
        report joined an open duplicate (并单) or repeats an earlier report (same key)."""
        rights = gate.for_report(api_key, report.channel_of().value)
        outcome = await intake.report(
            report,
            system=rights.system,
            key=report_key(rights, idempotency_key, report),
            correlation_id=correlation_id,
        )
        if outcome.outcome != "created":
            response.status_code = 200
        return report_receipt(outcome)

    @router.get("/incidents/{incident_id}", response_model=IncidentOut)
    async def get_incident(incident_id: IncidentPath, api_key: authenticated_key) -> IncidentOut:
        """The incident's state and its full event history (with the reporter's contact
        details, for the callback: keys need ``read_incidents``)."""
        gate.for_reading(api_key)
        history, state = await intake.history(incident_id)
        return incident_out(history, state)

    for name, model in COMMANDS.items():
        _add_command_route(router, intake, gate, name, model, authenticated_key)
    return router


def _add_command_route(
    router: APIRouter,
    intake: Intake,
    gate: Gate,
    name: CommandName,
    model: type[Command],
    key_dependency: Any,
) -> None:
    async def post_command(
        incident_id: IncidentPath,
        command: Any,
        api_key: Any,
        idempotency_key: IdempotencyKey = None,
    ) -> CommandReceipt:
        rights = gate.for_command(api_key, name.value)
        gate.check_units(rights, command)
        outcome = await intake.command(
            incident_id,
            command,
            system=rights.system,
            command_id=command_id_of(idempotency_key, command),
        )
        return command_receipt(outcome)

    post_command.__annotations__["command"] = Annotated[model, Body()]
    post_command.__annotations__["api_key"] = key_dependency
    post_command.__name__ = f"post_{name.value}"
    router.add_api_route(
        f"/incidents/{{incident_id}}/{name.value}",
        post_command,
        methods=["POST"],
        response_model=CommandReceipt,
        summary=f"{name.value.capitalize()} an incident",
        description=(
            f"{inspect.cleandoc(model.__doc__ or '')}\n\nChecked against the state rebuilt from"
            " the incident's own events: a command that does not fit gets 409 with the reason,"
            " and nothing is written."
        ),
        responses={
            409: {
                "model": ErrorBody,
                "description": "the command does not fit the incident's state",
            },
            **{
                status: {"model": ErrorBody, "description": text}
                for status, text in _COMMAND_REFUSALS.get(name, {}).items()
            },
        },
    )
