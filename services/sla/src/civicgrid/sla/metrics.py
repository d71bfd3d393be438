"""The sla service's Prometheus metrics. No incident id is ever a label."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class SlaMetrics:
    clocks_started: Counter
    clocks_stopped: Counter
    warnings: Counter
    breaches: Counter
    escalations: Counter
    firings: Counter
    firing_lateness: Histogram
    firing_fences: Counter
    pending_schedules: Gauge
    audit_repairs: Counter
    calendar_errors: Counter
    calendar_covered_until: Gauge
    class_orders: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> SlaMetrics:
        return cls(
            clocks_started=Counter(
                "civicgrid_sla_clocks_started",
                "SLA clocks started, by clock",
                ["clock"],
                registry=registry,
            ),
            clocks_stopped=Counter(
                "civicgrid_sla_clocks_stopped",
                "SLA clocks stopped, by clock and outcome (on_time, late, superseded, cancelled)",
                ["clock", "outcome"],
                registry=registry,
            ),
            warnings=Counter(
                "civicgrid_sla_warnings", "SLA warnings, by clock", ["clock"], registry=registry
            ),
            breaches=Counter(
                "civicgrid_sla_breaches", "SLA breaches, by clock", ["clock"], registry=registry
            ),
            escalations=Counter(
                "civicgrid_sla_escalations",
                "Escalations, by clock and ladder level",
                ["clock", "level"],
                registry=registry,
            ),
            firings=Counter(
                "civicgrid_sla_timer_firings",
                "Timer firings by verdict: fired, stale, duplicate, early",
                ["stage", "verdict"],
                registry=registry,
            ),
            firing_lateness=Histogram(
                "civicgrid_sla_firing_lateness_seconds",
                "From a deadline's time to its event being stored",
                ["stage"],
                buckets=LATENESS_BUCKETS,
                registry=registry,
            ),
            firing_fences=Counter(
                "civicgrid_sla_firing_fences",
                "Timer firings by how they were fenced: on the folded clocks (fold) or on the"
                " loaded history (history: the fold could not decide, or lost a race)",
                ["fence"],
                registry=registry,
            ),
            pending_schedules=Gauge(
                "civicgrid_sla_pending_schedules",
                "Timer schedules waiting in SLA_TIMERS",
                registry=registry,
            ),
            audit_repairs=Counter(
                "civicgrid_sla_audit_repairs",
                "Deadlines the auditor found missed or schedules it found orphaned (should be 0)",
                ["kind"],
                registry=registry,
            ),
            calendar_errors=Counter(
                "civicgrid_sla_calendar_not_covered",
                "Deadlines that could not be computed: the holiday data lacks the year",
                registry=registry,
            ),
            calendar_covered_until=Gauge(
                "civicgrid_sla_calendar_covered_until_timestamp_seconds",
                "24:00 local time of the last day the holiday data covers (0: not even today);"
                " alert well before it, when next year's schedule is due",
                registry=registry,
            ),
            class_orders=Counter(
                "civicgrid_sla_class_orders",
                "Command-centre SLA class orders handled: restarted (some clock restarted),"
                " unchanged (no running clock's deadline differs), unknown_class (the"
                " incident's policy version lacks the class; nothing restarted)",
                ["outcome"],
                registry=registry,
            ),
        )
