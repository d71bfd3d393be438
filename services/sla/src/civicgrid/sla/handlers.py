"""Reactions: an incident event or a timer firing -> load, decide, append, arm timers.

Both go through ``settle``, one ``decide_and_append``: load the incident's history, bring its
clocks up to date (the walk), judge the firing if there is one (the fence), append what is
missing as one atomic decision whose cause is the event (``sla:<event id>``) or the schedule
that fired, then arm or cancel the schedules of the clocks this cause touched. A conflict
reloads and decides again; a redelivery finds its cause recorded and only re-arms (which a
crash between append and arm may have skipped).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog

from civicgrid.city.workcalendar import CalendarNotCovered, WorkingCalendar
from civicgrid.events import subjects
from civicgrid.events.base import IncidentEvent, UnitRef
from civicgrid.events.consumer import PermanentFailure
from civicgrid.events.decide import Cause, DecisionContention, DecisionStore, decide_and_append
from civicgrid.events.ids import new_event_id
from civicgrid.events.incident_events import (
    DeadlineExtended,
    Escalated,
    SlaBreached,
    SlaClassOrdered,
    SlaClockStarted,
    SlaClockStopped,
    SlaWarning,
)
from civicgrid.events.notifications import SlaNotification
from civicgrid.events.store import ConcurrencyConflict, History, StoredEvent
from civicgrid.events.timers import TimerFiring
from civicgrid.sla.domain.clocks import Clocks, apply
from civicgrid.sla.domain.decide import (
    STAGES,
    Firing,
    Judged,
    UnitResolver,
    judge_firing,
    pending_firings,
    pinned_policy_version,
    walk,
)
from civicgrid.sla.domain.policy import SlaPolicyVersion
from civicgrid.sla.domain.rules import NoSuchClass
from civicgrid.sla.metrics import SlaMetrics

log = structlog.get_logger("civicgrid.sla")

MAX_ATTEMPTS = 8


class PolicySource(Protocol):
    async def for_incident(self, pinned: int | None) -> SlaPolicyVersion: ...


class Timers(Protocol):
    async def arm(self, firing: TimerFiring) -> None: ...

    async def cancel(self, incident_id: str, clock: str, stage: str) -> None: ...


class Notifier(Protocol):
    async def publish(self, subject: str, payload: bytes) -> None: ...


class FoldedClocks(Protocol):
    """A running fold of the incidents' histories (the read model), offered as a fence."""

    def fence(self, incident_id: str) -> tuple[int, Clocks] | None:
        """The clocks folded up to the incident's event at that stream sequence, when that
        fold is the walk of its history; None otherwise."""
        ...

    def appended(self, incident_id: str, after: int, stored: Sequence[StoredEvent]) -> None:
        """What was appended on the fence at ``after`` (the fold may take it in at once)."""
        ...


@dataclass
class SlaPorts:
    store: DecisionStore
    policies: PolicySource
    calendar: WorkingCalendar
    timers: Timers
    notifier: Notifier
    metrics: SlaMetrics
    notify_unit: UnitResolver
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    folded: FoldedClocks | None = None
    """When set, a firing is first judged on it (see ``_fire_on_fold``)."""


@dataclass(frozen=True)
class Settled:
    clocks: Clocks
    events: tuple[IncidentEvent, ...]
    """The history the decision was made on, with the decision's events after it (decided on
    the folded clocks: the decision's events only)."""
    written: tuple[IncidentEvent, ...]
    """What this call stored (not what a retry found already stored)."""
    judged: Judged | None

    def clocks_caused_by(self, cause_id: str) -> set[str]:
        return {
            str(getattr(e, "clock", ""))
            for e in self.events
            if e.causation_id == cause_id and getattr(e, "clock", None)
        }


async def when_incident_event(event: IncidentEvent, ports: SlaPorts, at_least: int = 0) -> Settled:
    """Bring the incident's clocks up to date through this event and arm their timers."""
    cause = Cause(f"sla:{event.event_id}")
    settled = await settle(event.incident_id, ports, cause=cause, at_least=at_least)
    touched = settled.clocks_caused_by(event.event_id)
    if isinstance(event, DeadlineExtended):
        touched.add(event.clock)
    if isinstance(event, SlaClassOrdered):
        await _report_order(event, settled, touched, ports)
    await reconcile_timers(settled.clocks, touched, ports, event.correlation_id)
    return settled


async def _report_order(
    event: SlaClassOrdered, settled: Settled, touched: set[str], ports: SlaPorts
) -> None:
    policy = await ports.policies.for_incident(settled.clocks.policy_version)
    if event.sla_class not in policy.classes:
        outcome = "unknown_class"
        log.warning(
            "sla_class_order_unknown_class",
            incident_id=event.incident_id,
            sla_class=event.sla_class,
            policy_version=policy.policy_version,
        )
    else:
        outcome = "restarted" if touched else "unchanged"
    # A redelivery of an order whose restart was stored counts nothing again.
    if settled.written or outcome != "restarted":
        ports.metrics.class_orders.labels(outcome).inc()


async def when_timer_fired(firing: TimerFiring, ports: SlaPorts, at_least: int = 0) -> Settled:
    """Fence the firing against the clock's current version; append and notify if it holds."""
    wanted = Firing(
        incident_id=firing.incident_id,
        clock=firing.clock,
        clock_version=firing.clock_version,
        stage=firing.stage,
        step=firing.step,
        repeat=firing.repeat,
        fire_at=firing.fire_at,
    )
    # One firing of one schedule is one cause: a redelivery, or the auditor's repair of the same
    # deadline, finds it applied.
    cause = Cause(
        f"sla:fired:{firing.clock}:{firing.clock_version}:{firing.stage}"
        f":{firing.step}:{firing.repeat}"
    )
    settled = await _fire_on_fold(firing, wanted, cause, ports)
    ports.metrics.firing_fences.labels("history" if settled is None else "fold").inc()
    if settled is None:
        settled = await settle(
            firing.incident_id,
            ports,
            wanted,
            cause=cause,
            correlation_id=firing.correlation_id,
            at_least=at_least,
        )
    verdict = settled.judged.verdict if settled.judged is not None else "duplicate"
    ports.metrics.firings.labels(firing.stage, verdict).inc()
    if settled.judged is not None and settled.judged.events and settled.written:
        # From the step's time (as the firing was armed) to its event being stored.
        late = (ports.now() - firing.fire_at).total_seconds()
        ports.metrics.firing_lateness.labels(firing.stage).observe(max(late, 0.0))
    # The fired stage's schedule is gone (the server removes it when it fires), and the stages
    # before it fired earlier: only the fired stage (re-armed if still wanted) and later ones
    # need attention.
    await reconcile_timers(
        settled.clocks, {firing.clock}, ports, firing.correlation_id, from_stage=firing.stage
    )
    others = {str(getattr(e, "clock", "")) for e in settled.written if getattr(e, "clock", None)}
    await reconcile_timers(settled.clocks, others - {firing.clock}, ports, firing.correlation_id)
    return settled


async def _fire_on_fold(
    firing: TimerFiring, wanted: Firing, cause: Cause, ports: SlaPorts
) -> Settled | None:
    """The firing decided on the folded clocks, without loading the history; None: load it.

    The fold covers the incident's history up to one stream sequence, and the event is
    appended expecting exactly that sequence as the incident's last: stored only if nothing
    was appended since, so the fence is the same as after a load. Anything but "fire now"
    (stale, duplicate, early), a lost race, or a fold that may not be the walk (the view
    says so) goes the full way, which decides, counts and explains it.
    """
    if ports.folded is None or not firing.correlation_id:
        # Without a correlation id the full path takes the incident's own (first event's).
        return None
    folded = ports.folded.fence(firing.incident_id)
    if folded is None:
        return None
    version, clocks = folded
    if wanted.stage == "escalation" and clocks.last_assignment is None:
        # Whom a rung notifies follows the last assignment, which a fold that restarted after
        # every clock had stopped may not hold.
        return None
    policy = await ports.policies.for_incident(clocks.policy_version)
    judged = judge_firing(
        clocks,
        wanted,
        policy,
        ports.now(),
        correlation_id=firing.correlation_id,
        notify_unit=ports.notify_unit,
    )
    if judged.verdict != "fired":
        return None
    try:
        stored = await ports.store.append_decision(
            judged.events, cause=cause.key, fingerprint=cause.fingerprint, expected_version=version
        )
    except ConcurrencyConflict:
        return None
    ports.folded.appended(firing.incident_id, version, stored)
    fresh = [each.event for each in stored]
    for event in fresh:
        clocks = apply(clocks, event)
    _count(ports.metrics, fresh)
    await _notify(ports, judged, fresh)
    return Settled(clocks, tuple(fresh), tuple(fresh), judged)


async def settle(
    incident_id: str,
    ports: SlaPorts,
    firing: Firing | None = None,
    *,
    cause: Cause | None = None,
    correlation_id: str = "",
    at_least: int = 0,
) -> Settled:
    """Bring the incident's clocks up to date (and judge ``firing``) as one decision."""
    cause = cause or Cause(f"sla:audit:{new_event_id()}")
    outcome: list[tuple[Clocks, list[IncidentEvent], Judged | None]] = []

    async def decide(history: History) -> list[IncidentEvent]:
        outcome[:] = [
            await _walk_and_judge(incident_id, list(history), ports, firing, correlation_id)
        ]
        return outcome[0][1]

    try:
        decided = await decide_and_append(
            ports.store, incident_id, cause, decide, at_least=at_least, max_attempts=MAX_ATTEMPTS
        )
    except DecisionContention as exc:
        raise ConcurrencyConflict(incident_id, 0, str(exc)) from exc
    events = list(decided.history)
    if decided.already_applied:
        # Recorded before (a redelivery, or a crash before the timers were armed): only the
        # clocks are needed, to arm what is still pending.
        clocks, _, _ = await _walk_and_judge(incident_id, events, ports, None, correlation_id)
        return Settled(clocks, tuple(events), (), None)
    clocks, to_write, judged = outcome[0]
    fresh = [stored.event for stored in decided.written]
    _count(ports.metrics, fresh)
    if judged is not None and judged.events and fresh:
        await _notify(ports, judged, fresh)
    return Settled(clocks, (*events, *to_write), tuple(fresh), judged)


async def _walk_and_judge(
    incident_id: str,
    events: list[IncidentEvent],
    ports: SlaPorts,
    firing: Firing | None,
    correlation_id: str,
) -> tuple[Clocks, list[IncidentEvent], Judged | None]:
    """The clock events the history is owed, and the firing's verdict with its events."""
    if not events:
        raise PermanentFailure(f"incident {incident_id} has no history")
    correlation = correlation_id or events[0].correlation_id
    policy = await ports.policies.for_incident(pinned_policy_version(events))
    try:
        walked = walk(incident_id, events, policy, ports.calendar.due)
    except CalendarNotCovered as exc:
        ports.metrics.calendar_errors.inc()
        raise PermanentFailure(str(exc)) from exc
    except NoSuchClass as exc:
        raise PermanentFailure(str(exc)) from exc
    clocks = walked.clocks
    to_write = list(walked.missing)
    judged = None
    if firing is not None:
        judged = judge_firing(
            clocks,
            firing,
            policy,
            ports.now(),
            correlation_id=correlation,
            notify_unit=ports.notify_unit,
        )
        to_write += judged.events
        for event in judged.events:
            clocks = apply(clocks, event)
    return clocks, to_write, judged


async def reconcile_timers(
    clocks: Clocks,
    touched: set[str],
    ports: SlaPorts,
    correlation_id: str,
    *,
    from_stage: str | None = None,
) -> None:
    """Arm each touched clock's next step; cancel the stages it no longer has.

    One schedule per running clock, its earliest pending step: a warning's firing arms the
    breach, a breach's the ladder. Most clocks stop before their first step, so arming every
    stage at once was a schedule (a replicated write, and its cancel) per stage for nothing.
    A later pending stage is neither armed nor cancelled: if an earlier version of the clock
    left a schedule there, its firing is fenced (stale) when it comes. A lost firing holds
    back the steps after it until the auditor fires it (its grace).

    ``from_stage``: after a firing of that stage, cancel nothing before or at it (already gone).
    Stages the clock's policy never arms (no warnings, no ladder) are never cancelled either.
    """
    policy = await ports.policies.for_incident(clocks.policy_version)
    never = {"warning"} if not policy.warning_ratios else set()
    never |= {"escalation"} if not policy.ladder else set()
    settled_stages = set(STAGES[: STAGES.index(from_stage) + 1]) if from_stage else set()
    requests: list[Awaitable[None]] = []
    for name in sorted(touched):
        clock = clocks.by_name.get(name)
        wanted = (
            pending_firings(clocks.incident_id, clock, policy)
            if clock is not None
            else dict.fromkeys(STAGES)
        )
        # The ladder is armed only after a breach: a first version that never breached has no
        # escalation schedule, and purging one (per clock started) costs a request for nothing.
        skip = never | settled_stages
        if clock is not None and clock.version == 1 and not clock.breached:
            skip = skip | {"escalation"}
        requests += (
            ports.timers.cancel(clocks.incident_id, name, stage)
            for stage, firing in wanted.items()
            if firing is None and stage not in skip
        )
        next_step = _earliest(wanted)
        if next_step is not None and next_step.fire_at is not None:
            requests.append(
                ports.timers.arm(
                    TimerFiring(
                        incident_id=clocks.incident_id,
                        clock=name,
                        stage=next_step.stage,
                        clock_version=next_step.clock_version,
                        step=next_step.step,
                        repeat=next_step.repeat,
                        fire_at=next_step.fire_at,
                        correlation_id=correlation_id,
                    )
                )
            )
    # Each request is about its own schedule subject, so they go out together: a few writes
    # and reads on each side instead of a round trip each, which is most of a schedule's CPU
    # cost in both processes. If one fails, the event is redelivered and all are made again.
    await asyncio.gather(*requests)


def _earliest(wanted: dict[str, Firing | None]) -> Firing | None:
    """The pending step that comes first (in stage order on a tie)."""
    pending = [
        (firing.fire_at, n, firing)
        for n, firing in enumerate(wanted.values())
        if firing is not None and firing.fire_at is not None
    ]
    return min(pending, key=lambda each: (each[0], each[1]))[2] if pending else None


def _count(metrics: SlaMetrics, fresh: Sequence[IncidentEvent]) -> None:
    for event in fresh:
        if isinstance(event, SlaClockStarted):
            metrics.clocks_started.labels(event.clock).inc()
        elif isinstance(event, SlaClockStopped):
            outcome = event.reason.value
            if event.on_time is not None:
                outcome = "on_time" if event.on_time else "late"
            metrics.clocks_stopped.labels(event.clock, outcome).inc()
        elif isinstance(event, SlaWarning):
            metrics.warnings.labels(event.clock).inc()
        elif isinstance(event, SlaBreached):
            metrics.breaches.labels(event.clock).inc()
        elif isinstance(event, Escalated):
            metrics.escalations.labels(event.clock, str(event.ladder_level)).inc()


async def _notify(ports: SlaPorts, judged: Judged, fresh: Sequence[IncidentEvent]) -> None:
    # Only for events this call stored: a redelivery of an applied firing announces nothing.
    fresh_ids = {e.event_id for e in fresh}
    for unit, event in judged.notify:
        if event.event_id not in fresh_ids:
            continue
        await ports.notifier.publish(
            _subject(unit), _notification(unit, event).model_dump_json().encode()
        )


def _subject(unit: UnitRef) -> str:
    return subjects.notify(unit.kind.value, unit.id)


def _notification(unit: UnitRef, event: IncidentEvent) -> SlaNotification:
    due_at = getattr(event, "due_at", None)
    assert due_at is not None
    late = max((event.occurred_at - due_at).total_seconds(), 0.0)
    escalated = event if isinstance(event, Escalated) else None
    return SlaNotification(
        kind=event.event_type,
        incident_id=event.incident_id,
        clock=getattr(event, "clock", ""),
        clock_version=getattr(event, "clock_version", 1) or 1,
        due_at=due_at,
        late_s=late,
        unit=unit,
        ladder_level=escalated.ladder_level if escalated else None,
        ladder_name=escalated.ladder_name if escalated else None,
        notify_role=escalated.notify_role if escalated else None,
        repeat=escalated.repeat if escalated else 0,
        request_reassignment=escalated.request_reassignment if escalated else False,
        event_id=event.event_id,
    )
