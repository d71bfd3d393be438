"""What taking a report and carrying out a command answer (the receipts are built from these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ReportResult = Literal["created", "merged", "retried"]
CommandResult = Literal["applied", "already_applied"]


@dataclass(frozen=True)
class ReportOutcome:
    incident_id: str
    outcome: ReportResult
    distance_m: float | None = None
    minutes_apart: float | None = None


@dataclass(frozen=True)
class CommandOutcome:
    incident_id: str
    command: str
    outcome: CommandResult
    event_types: tuple[str, ...]
    version: int
