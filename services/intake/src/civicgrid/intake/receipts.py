"""What intake answers, over HTTP and NATS alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from civicgrid.events.base import UnitRef
from civicgrid.events.store import History
from civicgrid.intake.domain.state import IncidentState
from civicgrid.intake.errors import ErrorBody
from civicgrid.intake.outcomes import CommandOutcome, ReportOutcome

_MESSAGES = {
    "created": "a new incident was opened",
    "merged": "the report joined an open incident of the same category nearby (并单)",
    "retried": "this report was received before; nothing new was written",
}


class ReportReceipt(BaseModel):
    incident_id: str
    outcome: Literal["created", "merged", "retried"]
    message: str
    distance_m: float | None = None
    minutes_apart: float | None = None


def report_receipt(outcome: ReportOutcome) -> ReportReceipt:
    return ReportReceipt(
        incident_id=outcome.incident_id,
        outcome=outcome.outcome,
        message=_MESSAGES[outcome.outcome],
        distance_m=None if outcome.distance_m is None else round(outcome.distance_m, 1),
        minutes_apart=None if outcome.minutes_apart is None else round(outcome.minutes_apart, 1),
    )


class CommandReceipt(BaseModel):
    incident_id: str
    command: str
    outcome: Literal["applied", "already_applied"]
    events: list[str]
    version: int


def command_receipt(outcome: CommandOutcome) -> CommandReceipt:
    return CommandReceipt(
        incident_id=outcome.incident_id,
        command=outcome.command,
        outcome=outcome.outcome,
        events=list(outcome.event_types),
        version=outcome.version,
    )


class StateOut(BaseModel):
    stage: str
    open: bool
    category: str
    reported_at: datetime | None
    updated_at: datetime | None
    lead_unit: UnitRef | None
    on_site: bool
    sla_class: str | None = Field(
        default=None,
        description="the class the clocks run under: the command centre's order, else the"
        " assignment's (from the matter)",
    )
    suspended: bool
    callback_satisfied: bool | None
    clocks: dict[str, datetime]
    expected_at: datetime | None
    merged_into: str | None
    merged_reports: int
    returns: int


def state_out(state: IncidentState) -> StateOut:
    return StateOut(
        stage=state.stage.value,
        open=state.is_open,
        category=state.category,
        reported_at=state.reported_at,
        updated_at=state.updated_at,
        lead_unit=state.lead_unit,
        on_site=state.on_site,
        sla_class=state.sla_class,
        suspended=state.suspended,
        callback_satisfied=state.callback_satisfied,
        clocks=dict(state.clocks),
        expected_at=state.resolve_due_at,
        merged_into=state.merged_into,
        merged_reports=state.merged_reports,
        returns=state.returns,
    )


class IncidentOut(BaseModel):
    incident_id: str
    version: int
    state: StateOut
    events: list[dict[str, Any]]


def incident_out(history: History, state: IncidentState) -> IncidentOut:
    return IncidentOut(
        incident_id=history.incident_id,
        version=history.version,
        state=state_out(state),
        events=[
            {"sequence": stored.sequence, **stored.event.model_dump(mode="json")}
            for stored in history.events
        ],
    )


class IntakeReply(BaseModel):
    """The reply to every ``intake.report.*`` and ``intake.command.*`` request."""

    ok: bool
    incident_id: str | None = None
    outcome: str | None = None
    message: str | None = None
    events: list[str] | None = None
    version: int | None = None
    error: ErrorBody | None = None
