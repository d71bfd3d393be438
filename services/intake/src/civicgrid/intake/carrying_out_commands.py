"""Carrying out a handler's or the command centre's command, and the reactions that follow.

Each command is one ``decide_and_append`` on its incident: the state folded from the history
judges it (409 with the reason, nothing written), its events are stored whole, and its cause
is the command's idempotency key with a fingerprint of its name and body, so a retry is
"already applied" and a reused key for another command is refused (422). A command centre's
merge is decided on the target; closing the source is a reaction to the ``merged`` event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from civicgrid.events.base import IncidentEvent
from civicgrid.events.decide import (
    Cause,
    Decided,
    DecisionContention,
    IdempotencyConflict,
    decide_and_append,
    fingerprint_of,
)
from civicgrid.events.incident_events import Merged
from civicgrid.events.store import History
from civicgrid.intake.catalogue import Catalogue
from civicgrid.intake.domain import decisions, identity
from civicgrid.intake.domain.commands import Command, Merge, Reclassify, command_name
from civicgrid.intake.domain.decisions import CommandRejected, Context
from civicgrid.intake.domain.state import IncidentState, fold
from civicgrid.intake.errors import (
    Problem,
    Refused,
    invalid,
    key_reused,
    not_found,
    quoted,
    rejected,
)
from civicgrid.intake.outcomes import CommandOutcome

if TYPE_CHECKING:
    from civicgrid.intake.handlers import Intake

log = structlog.get_logger("civicgrid.intake")

SOURCE = "intake"


async def carry_out(
    ports: Intake, incident_id: str, command: Command, *, system: str, command_id: str
) -> CommandOutcome:
    name = command_name(command).value
    cause = Cause(
        identity.command_causation(system, command_id),
        fingerprint_of(name, command.model_dump(mode="json", exclude=_NOT_FINGERPRINTED)),
    )
    try:
        _check_against_config(ports.catalogue, command)
        if isinstance(command, Merge):
            outcome = await _merge(ports, incident_id, command, system, cause)
        else:
            outcome = await _carry_out(ports, incident_id, command, system, cause)
    except CommandRejected as exc:
        ports.metrics.commands.labels(name, "rejected").inc()
        log.info("command_rejected", incident_id=incident_id, command=name, reason=exc.reason)
        raise rejected(exc.reason) from exc
    except IdempotencyConflict as exc:
        ports.metrics.commands.labels(name, "key_reused").inc()
        raise key_reused(command_id) from exc
    except DecisionContention as exc:
        ports.metrics.concurrency_retries.labels(name).inc()
        raise rejected("the incident is changing too quickly; try again") from exc
    except Refused:
        ports.metrics.commands.labels(name, "refused").inc()
        raise
    ports.metrics.commands.labels(name, outcome.outcome).inc()
    log.info(
        "command_carried_out",
        incident_id=incident_id,
        command=name,
        outcome=outcome.outcome,
        system=system,
    )
    return outcome


async def _carry_out(
    ports: Intake, incident_id: str, command: Command, system: str, cause: Cause
) -> CommandOutcome:
    def decide(history: History) -> list[IncidentEvent]:
        if not history:
            raise not_found(f"incident {incident_id} does not exist", "incident_id")
        state = fold(incident_id, history)
        return decisions.decide(state, command, _context(ports, state, command, system, cause))

    decided = await decide_and_append(
        ports.store(), incident_id, cause, decide, on_conflict=_count_conflict(ports, command)
    )
    ports.index.absorb([*decided.history.events, *decided.written])
    return _outcome(incident_id, command, decided)


async def _merge(
    ports: Intake, incident_id: str, command: Merge, system: str, cause: Cause
) -> CommandOutcome:
    """The decision is the target's; the source closes as a reaction (``close_merged``)."""
    store = ports.store()
    # Decided on without an append to it (the merge is appended to the target): read it no
    # older than the leader has it, or a follower behind could refuse a merge wrongly.
    source_history = await store.load_latest(incident_id)
    if not source_history:
        raise not_found(f"incident {incident_id} does not exist", "incident_id")
    source = fold(incident_id, source_history)
    target_id = command.into_incident_id

    def decide(target_history: History) -> list[IncidentEvent]:
        target = fold(target_id, target_history)
        context = _context(ports, source, command, system, cause)
        return decisions.decide_merge(source, target, command, context)

    decided = await decide_and_append(
        store, target_id, cause, decide, on_conflict=_count_conflict(ports, command)
    )
    ports.index.absorb([*decided.history.events, *decided.written])
    outcome = _outcome(incident_id, command, decided)
    return replace(outcome, version=source_history.version)


async def close_merged(ports: Intake, merged: Merged, at_least: int) -> None:
    """Reaction to a command centre's merge: close its source, once, however often asked."""
    source_id = merged.from_incident_id
    if source_id is None:
        return

    def decide(history: History) -> list[IncidentEvent]:
        return decisions.close_merged_source(fold(source_id, history), merged)

    cause = Cause.of_reaction(SOURCE, "close-merged", merged.event_id)
    decided = await decide_and_append(ports.store(), source_id, cause, decide, at_least=at_least)
    ports.index.absorb([*decided.history.events, *decided.written])


def _check_against_config(catalogue: Catalogue, command: Command) -> None:
    """What the city's configuration says of the request itself (422), before any state."""
    if isinstance(command, Reclassify) and command.sla_class not in catalogue.sla_classes:
        allowed = ", ".join(catalogue.sla_classes) or "(none configured)"
        raise invalid(
            [
                Problem(
                    "sla_class",
                    f"unknown SLA class {quoted(command.sla_class)}; allowed: {allowed}",
                )
            ]
        )


def _count_conflict(ports: Intake, command: Command) -> Callable[[], None]:
    return ports.metrics.concurrency_retries.labels(command_name(command).value).inc


def _context(
    ports: Intake, state: IncidentState, command: Command, system: str, cause: Cause
) -> Context:
    return Context(
        causation_id=cause.key,
        correlation_id=command.correlation_id or state.correlation_id or cause.key,
        now=ports.clock(),
        system=system,
    )


async def show(ports: Intake, incident_id: str) -> tuple[History, IncidentState]:
    history = await ports.store().load(incident_id)
    if not history:
        raise not_found(f"incident {incident_id} does not exist", "incident_id")
    ports.index.absorb(history.events)
    return history, fold(incident_id, history)


# What identifies a command's request besides its body: not part of what it asked for.
_NOT_FINGERPRINTED = {"command_id", "correlation_id"}


def _outcome(incident_id: str, command: Command, decided: Decided) -> CommandOutcome:
    events = decided.written or ()
    return CommandOutcome(
        incident_id,
        command_name(command).value,
        "applied" if decided.written else "already_applied",
        tuple(stored.event.event_type for stored in events),
        decided.version,
    )
