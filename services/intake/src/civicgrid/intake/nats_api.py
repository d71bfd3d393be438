"""Request/reply for other systems: ``intake.report.<channel>`` and ``intake.command.<command>``.

Headers: ``X-API-Key`` (required, the same keys and rights as HTTP), ``Idempotency-Key``
(optional), ``X-Correlation-ID`` (optional). Every request gets an ``IntakeReply``: the
incident id and outcome, or ``ok: false`` with an error naming the field and the reason.
No exception leaves a caller waiting for its timeout.

No ``from __future__ import annotations``: FastStream reads the payload annotations at
runtime, and they are what the AsyncAPI document publishes.
"""

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from faststream.middlewares import ExceptionMiddleware
from faststream.nats import NatsBroker, NatsRouter
from faststream.nats.annotations import NatsMessage
from pydantic import BaseModel, ValidationError, create_model

from civicgrid.events import subjects
from civicgrid.events.incident_events import Channel
from civicgrid.intake.access import Gate
from civicgrid.intake.domain.commands import COMMANDS, Command, CommandName, IncidentId
from civicgrid.intake.errors import Problem, Refused, invalid, problems_from, too_large
from civicgrid.intake.handlers import Intake
from civicgrid.intake.metrics import IntakeMetrics
from civicgrid.intake.receipts import IntakeReply, command_receipt, report_receipt
from civicgrid.intake.reports import CHANNEL_MODELS, ReportIn
from civicgrid.intake.web.native import command_id_of, report_key

log = structlog.get_logger("civicgrid.intake.nats")

QUEUE = "intake"

# The NATS payload of a command is its HTTP body plus the incident it is for.
COMMAND_REQUESTS: dict[CommandName, type[Command]] = {
    name: create_model(
        f"{model.__name__}Request",
        __base__=model,
        __doc__=model.__doc__,
        incident_id=(IncidentId, ...),
    )
    for name, model in COMMANDS.items()
}


def attach_nats_api(
    broker: NatsBroker, intake: Intake, gate: Gate, max_bytes: int, metrics: IntakeMetrics
) -> None:
    async def on_error(exc: Exception) -> IntakeReply:
        refusal = _refusal(exc)
        if refusal.status != 409:
            metrics.refusals.labels("nats", str(refusal.status)).inc()
        return IntakeReply(ok=False, error=refusal.body())

    async def decode_within_limit(message: Any, decode: Callable[[Any], Awaitable[Any]]) -> Any:
        # Before the payload is parsed: an oversized body is refused as such, not as invalid.
        if len(message.body or b"") > max_bytes:
            raise too_large(max_bytes)
        return await decode(message)

    router = NatsRouter(middlewares=[ExceptionMiddleware(publish_handlers={Exception: on_error})])
    for channel, model in CHANNEL_MODELS.items():
        router.subscriber(
            subjects.intake_report(channel.value),
            queue=QUEUE,
            decoder=decode_within_limit,
            title=subjects.intake_report(channel.value),
            description=(model.__doc__ or "").strip(),
        )(_report_handler(intake, gate, channel, model))
    for name, request_model in COMMAND_REQUESTS.items():
        router.subscriber(
            subjects.intake_command(name.value),
            queue=QUEUE,
            decoder=decode_within_limit,
            title=subjects.intake_command(name.value),
            description=inspect.cleandoc(request_model.__doc__ or ""),
        )(_command_handler(intake, gate, name, request_model))
    broker.include_router(router)


def _refusal(exc: Exception) -> Refused:
    if isinstance(exc, Refused):
        return exc
    if isinstance(exc, ValidationError):
        return invalid(problems_from(exc))
    # The type only: the message could quote what was sent.
    log.error("nats_request_failed", error=type(exc).__name__)
    return Refused(503, "unavailable", [Problem(None, "intake cannot complete this now; retry")])


def _headers(message: Any) -> Mapping[str, str]:
    return {str(k).lower(): str(v) for k, v in (message.headers or {}).items()}


def _check(message: Any) -> Mapping[str, str]:
    headers = _headers(message)
    for name in ("idempotency-key", "x-correlation-id"):
        value = headers.get(name)
        if value is not None and not (
            0 < len(value) <= 80 and all(0x21 <= ord(ch) <= 0x7E for ch in value)
        ):
            raise invalid([Problem(name, "must be 1-80 printable ASCII characters")])
    return headers


def _report_handler(
    intake: Intake, gate: Gate, channel: Channel, model: type[ReportIn]
) -> Callable[..., Awaitable[IntakeReply]]:
    async def handle(body: Any, message: NatsMessage) -> IntakeReply:
        headers = _check(message)
        rights = gate.for_report(headers.get("x-api-key"), channel.value)
        outcome = await intake.report(
            body,
            system=rights.system,
            key=report_key(rights, headers.get("idempotency-key"), body),
            correlation_id=headers.get("x-correlation-id"),
        )
        receipt = report_receipt(outcome)
        return IntakeReply(
            ok=True,
            incident_id=receipt.incident_id,
            outcome=receipt.outcome,
            message=receipt.message,
        )

    handle.__annotations__["body"] = model
    handle.__name__ = f"report_{channel.value}"
    return handle


def _command_handler(
    intake: Intake, gate: Gate, name: CommandName, model: type[BaseModel]
) -> Callable[..., Awaitable[IntakeReply]]:
    base = COMMANDS[name]

    async def handle(body: Any, message: NatsMessage) -> IntakeReply:
        headers = _check(message)
        rights = gate.for_command(headers.get("x-api-key"), name.value)
        command = base.model_validate(body.model_dump(exclude={"incident_id"}))
        gate.check_units(rights, command)
        outcome = await intake.command(
            body.incident_id,
            command,
            system=rights.system,
            command_id=command_id_of(headers.get("idempotency-key"), command),
        )
        receipt = command_receipt(outcome)
        return IntakeReply(
            ok=True,
            incident_id=receipt.incident_id,
            outcome=receipt.outcome,
            events=receipt.events,
            version=receipt.version,
        )

    handle.__annotations__["body"] = model
    handle.__name__ = f"command_{name.value}"
    return handle
