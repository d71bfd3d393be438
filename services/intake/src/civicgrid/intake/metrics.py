"""Intake's domain metrics. Labels are bounded sets: channel, command, outcome, system;
never an incident id, an address or anything a citizen said."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass
class IntakeMetrics:
    reports: Counter
    commands: Counter
    refusals: Counter
    concurrency_retries: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IntakeMetrics:
        return cls(
            reports=Counter(
                "civicgrid_intake_reports_total",
                "Reports by channel and outcome (created, merged, retried, refused)",
                ["channel", "outcome"],
                registry=registry,
            ),
            commands=Counter(
                "civicgrid_intake_commands_total",
                "Commands by type and outcome (applied, already_applied, rejected, refused)",
                ["command", "outcome"],
                registry=registry,
            ),
            refusals=Counter(
                "civicgrid_intake_refusals_total",
                "Requests refused before any decision, by interface and HTTP-style status",
                ["interface", "status"],
                registry=registry,
            ),
            concurrency_retries=Counter(
                "civicgrid_intake_concurrency_retries_total",
                "Decisions taken again after another writer appended first",
                ["operation"],
                registry=registry,
            ),
        )
