"""The auditor: a periodic sweep that no deadline slipped through and no schedule is orphaned.

- Every running clock whose next warning, breach or ladder level is due more than ``grace_s``
  ago without its event: fire it now, through the same fenced path as a timer firing.
- Every pending schedule whose clock (by the incident's own history) has nothing pending on
  that stage: cancel it.

Both are counted in ``civicgrid_sla_audit_repairs_total{kind}``, which should stay 0: a repair
means a timer was lost (or a firing dead-lettered) somewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from nats.js import JetStreamContext

from civicgrid.events import timers
from civicgrid.events.timers import TimerFiring
from civicgrid.sla.domain.clocks import Clock, Clocks, Status
from civicgrid.sla.domain.decide import pending_firings
from civicgrid.sla.domain.policy import SlaPolicyVersion
from civicgrid.sla.handlers import SlaPorts, settle, when_timer_fired
from civicgrid.sla.read_model import RunningClocks

log = structlog.get_logger("civicgrid.sla.auditor")

# Clocks or schedules looked at between two yields to the event loop.
SWEEP_SLICE = 500


@dataclass
class AuditReport:
    at: datetime | None = None
    running_clocks: int = 0
    pending_schedules: int = 0
    firings_backlog: int = 0
    """Firings waiting for the sla-timers consumer; overdue steps are not judged lost then."""
    repaired: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


class Auditor:
    def __init__(
        self,
        view: RunningClocks,
        ports: SlaPorts,
        jetstream: Callable[[], JetStreamContext],
        *,
        grace_s: float = 60.0,
        interval_s: float = 30.0,
        firings_backlog: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.view = view
        self.ports = ports
        self.jetstream = jetstream
        self.grace = timedelta(seconds=grace_s)
        self.interval_s = interval_s
        self.firings_backlog = firings_backlog
        self.last = AuditReport()

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if not self.view.caught_up:
                continue
            try:
                await self.sweep()
            except Exception as exc:
                log.error("audit_sweep_failed", error=f"{type(exc).__name__}: {exc}")
                self.last.failures = [f"sweep failed: {type(exc).__name__}"]

    async def sweep(self) -> AuditReport:
        report = AuditReport(at=datetime.now(UTC))
        now = self.ports.now()
        if self.firings_backlog is not None:
            report.firings_backlog = await self.firings_backlog()
        # Overdue steps whose firings wait in the stream are late, not lost: the consumer
        # will judge them. Repairing now would race it and count false repairs. (Nor is the
        # view walked for them then: with a backlog, the consumer needs the time.)
        running = [] if report.firings_backlog else self.view.running()
        report.running_clocks = len(running) if running else self.view.running_count()
        cutoff = now - self.grace
        for index, (clocks, clock) in enumerate(running):
            if index % SWEEP_SLICE == 0:
                # A long sweep would hold up the firings meanwhile: let them in between.
                await asyncio.sleep(0)
            if clock.status is not Status.RUNNING or _nothing_due_by(clock, cutoff):
                continue
            policy = await self.ports.policies.for_incident(clocks.policy_version)
            for stage, due in pending_firings(clocks.incident_id, clock, policy).items():
                if due is None or due.fire_at is None or due.fire_at > cutoff:
                    continue
                firing = TimerFiring(
                    incident_id=clocks.incident_id,
                    clock=clock.name,
                    stage=stage,
                    clock_version=clock.version,
                    step=due.step,
                    repeat=due.repeat,
                    fire_at=due.fire_at,
                )
                try:
                    settled = await when_timer_fired(firing, self.ports)
                except Exception as exc:
                    report.failures.append(f"{stage} of a {clock.name} clock: {exc}")
                    continue
                if settled.written:
                    self._count(report, f"missed_{stage}")
                    log.error("audit_repaired_missed_deadline", stage=stage, clock=clock.name)
        pending = await timers.pending_subjects(self.jetstream())
        report.pending_schedules = len(pending)
        for index, subject in enumerate(sorted(pending)):
            if index % SWEEP_SLICE == 0:
                await asyncio.sleep(0)
            _, _, incident_id, name, stage = subject.split(".")
            known = self.view.clocks_of(incident_id)
            seen = known.by_name.get(name) if known else None
            if seen is not None and seen.status is Status.RUNNING:
                continue
            # The view may lag: the incident's own history decides.
            settled = await settle(incident_id, self.ports)
            actual = settled.clocks.by_name.get(name)
            wanted = (
                pending_firings(incident_id, actual, await self._policy(settled.clocks))
                if actual is not None
                else {}
            )
            if wanted.get(stage) is None:
                await self.ports.timers.cancel(incident_id, name, stage)
                self._count(report, "orphan_schedule")
                log.error("audit_cancelled_orphan_schedule", clock=name, stage=stage)
        self.last = report
        return report

    async def _policy(self, clocks: Clocks) -> SlaPolicyVersion:
        return await self.ports.policies.for_incident(clocks.policy_version)

    def _count(self, report: AuditReport, kind: str) -> None:
        report.repaired[kind] = report.repaired.get(kind, 0) + 1
        self.ports.metrics.audit_repairs.labels(kind).inc()

    def problem(self) -> str | None:
        if self.last.failures:
            return f"auditor: {len(self.last.failures)} deadline(s) could not be repaired"
        return None


def _nothing_due_by(clock: Clock, cutoff: datetime) -> bool:
    """True when no step of the clock can be due by ``cutoff``: its first warning (or its due
    time, without warnings) is later, and every later step (breach, ladder levels counted
    from the due time) comes after it."""
    lead = max(clock.warn_leads, default=timedelta(0))
    return clock.due_at - max(lead, timedelta(0)) > cutoff
