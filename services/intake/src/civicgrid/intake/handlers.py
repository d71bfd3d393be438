"""Intake's use cases, as one set of ports: take a report, carry out a command, react to a
merge, show an incident. The work is in ``taking_reports`` and ``carrying_out_commands``;
this is what the web, NATS and consumer entry points hold (built in ``app``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from civicgrid.events.base import utc_now
from civicgrid.events.incident_events import Merged
from civicgrid.events.store import EventStore, History
from civicgrid.intake.carrying_out_commands import carry_out, close_merged, show
from civicgrid.intake.catalogue import Catalogue
from civicgrid.intake.claims import DuplicateClaims
from civicgrid.intake.domain.commands import Command
from civicgrid.intake.domain.state import IncidentState
from civicgrid.intake.index import IncidentIndex
from civicgrid.intake.keyed_locks import KeyedLocks
from civicgrid.intake.metrics import IntakeMetrics
from civicgrid.intake.outcomes import CommandOutcome, ReportOutcome
from civicgrid.intake.reports import ReportIn
from civicgrid.intake.taking_reports import take_report


@dataclass
class Intake:
    store: Callable[[], EventStore]
    index: IncidentIndex
    catalogue: Catalogue
    metrics: IntakeMetrics
    claims: DuplicateClaims
    clock: Callable[[], datetime] = utc_now
    # One merge at a time into an incident in this replica: reports joining one incident
    # together would otherwise mostly fail their expected-version check and go round again.
    incident_locks: KeyedLocks = field(default_factory=KeyedLocks)

    async def report(
        self, report: ReportIn, *, system: str, key: str | None, correlation_id: str | None = None
    ) -> ReportOutcome:
        return await take_report(
            self, report, system=system, key=key, correlation_id=correlation_id
        )

    async def command(
        self, incident_id: str, command: Command, *, system: str, command_id: str
    ) -> CommandOutcome:
        return await carry_out(self, incident_id, command, system=system, command_id=command_id)

    async def close_merged(self, merged: Merged, at_least: int) -> None:
        await close_merged(self, merged, at_least)

    async def history(self, incident_id: str) -> tuple[History, IncidentState]:
        return await show(self, incident_id)


__all__ = ["CommandOutcome", "Intake", "ReportOutcome"]
