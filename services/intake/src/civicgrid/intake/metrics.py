"""Intake's domain metrics. Labels are bounded sets: channel, command, outcome, system;
never an incident id, an address or anything a citizen said."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class IntakeMetrics:
    reports: Counter
    commands: Counter
    refusals: Counter
    concurrency_retries: Counter
    projection_position: Gauge
    projection_skipped: Counter

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
            projection_position=Gauge(
                "civicgrid_intake_projection_sequence",
                "Last INCIDENTS stream sequence applied to this replica's index",
                registry=registry,
            ),
            projection_skipped=Counter(
                "civicgrid_intake_projection_skipped_total",
                "Stream messages the index could not read",
                registry=registry,
            ),
        )
