"""What a handler or the command centre can ask of an incident: imperative, validated data.

These are the bodies of ``POST /api/v1/incidents/{id}/<command>`` and, with an
``incident_id``, of ``intake.command.<command>``. Whether a command fits the incident is
decided in ``decisions`` against the state rebuilt from the incident's events.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from civicgrid.events.base import GeoPoint, UnitRef
from civicgrid.events.incident_events import HandlingLevel, ReturnReason
from civicgrid.intake.domain.text import ExternalId, Line, Reason, Text

IncidentId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
CommandId = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[\x21-\x7e]+$")]
SlaClock = Annotated[str, Field(pattern=r"^(accept|arrive|resolve)$")]


class CommandName(StrEnum):
    ACCEPT = "accept"
    ARRIVE = "arrive"
    RETURN = "return"
    SUSPEND = "suspend"
    RESUME = "resume"
    EXTEND = "extend"
    RESOLVE = "resolve"
    CALLBACK = "callback"
    CLOSE = "close"
    REOPEN = "reopen"
    REASSIGN = "reassign"
    MERGE = "merge"
    RECLASSIFY = "reclassify"


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # A retry with the same command id is recognised and writes nothing; the
    # ``Idempotency-Key`` header (HTTP) or NATS header does the same.
    command_id: CommandId | None = None
    correlation_id: ExternalId | None = None


class Accept(Command):
    """签收: the assigned lead unit signs for the dispatch."""

    unit: UnitRef


class Arrive(Command):
    """到场: the lead unit is on site (required before resolving an on-site matter)."""

    unit: UnitRef
    location: GeoPoint | None = None


class Return(Command):
    """退单: the lead unit hands the dispatch back, with a reason, for routing to decide again."""

    unit: UnitRef
    reason_code: ReturnReason
    note: Annotated[Text, Field(max_length=2000)] = ""
    corrected_location: GeoPoint | None = None
    corrected_category: (
        Annotated[str, Field(max_length=128, pattern=r"^[A-Za-z0-9._-]+$")] | None
    ) = None


class Suspend(Command):
    """挂起: handling pauses (waiting for the citizen); clocks pause with it."""

    unit: UnitRef
    reason: Annotated[Text, Reason]


class Resume(Command):
    unit: UnitRef


class Extend(Command):
    """延期: an approved extension moves a running clock's deadline."""

    approved_by: UnitRef
    clock: SlaClock
    new_due_at: AwareDatetime
    reason: Annotated[Text, Reason]


class Resolve(Command):
    """办结: the lead unit reports the matter handled."""

    unit: UnitRef
    resolution: Annotated[Text, Field(min_length=1, max_length=4000)]


class Callback(Command):
    """回访: the citizen was called back. A dissatisfied callback reopens the incident."""

    satisfied: bool
    rating: int = Field(ge=1, le=5)
    comment: Annotated[Text, Field(max_length=2000)] = ""
    unit: UnitRef | None = None


class Close(Command):
    """结案. After resolution anyone entitled may close; before it, only the command centre."""

    reason: Annotated[Text, Field(max_length=2000)] = ""
    unit: UnitRef | None = None


class Reopen(Command):
    """重办: after resolution or closure. Without a unit, the citizen asked for it."""

    reason: Annotated[Text, Reason]
    unit: UnitRef | None = None


class Reassign(Command):
    """改派: the command centre orders routing to decide again, optionally naming the unit."""

    unit: UnitRef
    reason: Annotated[Text, Reason]
    to_unit: UnitRef | None = None
    to_level: HandlingLevel | None = None


class Merge(Command):
    """并单: the command centre merges this incident into another open one."""

    unit: UnitRef
    into_incident_id: IncidentId
    reason: Annotated[Line, Field(max_length=500)] = ""


class Reclassify(Command):
    """定级: the command centre orders the incident's SLA class (urgent, difficult, ...).

    ``sla_class`` must be one of the classes in the city's ``sla.yaml`` (422 names them). The
    order stands over later assignments; the sla service restarts, from the order's time, each
    running clock whose deadline differs under the new class (``sla_class_ordered``).

    422: a class ``sla.yaml`` does not have (the error lists the allowed ones). 409: the unit
    is not the command centre; the incident is resolved, closed or merged; or it already runs
    under that class (nothing would change, so nothing is written).
    """

    unit: UnitRef
    sla_class: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Annotated[Text, Reason]


COMMANDS: dict[CommandName, type[Command]] = {
    CommandName.ACCEPT: Accept,
    CommandName.ARRIVE: Arrive,
    CommandName.RETURN: Return,
    CommandName.SUSPEND: Suspend,
    CommandName.RESUME: Resume,
    CommandName.EXTEND: Extend,
    CommandName.RESOLVE: Resolve,
    CommandName.CALLBACK: Callback,
    CommandName.CLOSE: Close,
    CommandName.REOPEN: Reopen,
    CommandName.REASSIGN: Reassign,
    CommandName.MERGE: Merge,
    CommandName.RECLASSIFY: Reclassify,
}


def command_name(command: Command) -> CommandName:
    for name, cls in COMMANDS.items():
        if type(command) is cls:
            return name
    raise TypeError(f"not a command: {type(command).__name__}")


__all__ = [
    "COMMANDS",
    "Accept",
    "Arrive",
    "Callback",
    "Close",
    "Command",
    "CommandId",
    "CommandName",
    "Extend",
    "IncidentId",
    "Merge",
    "Reassign",
    "Reclassify",
    "Reopen",
    "Resolve",
    "Resume",
    "Return",
    "Suspend",
    "command_name",
]
