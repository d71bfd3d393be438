"""The clock rules: what one incident event does to the clocks (design section 4, issue 8).

``effects(clocks, event, ...)`` is pure: the SLA events the event implies, given the clocks as
they were just before it. Times come from the event, never from "now", so a late or repeated
handling decides the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from civicgrid.events.base import Actor, ActorKind, IncidentEvent, UnitRef
from civicgrid.events.incident_events import (
    Accepted,
    Arrived,
    Assigned,
    ClockStopReason,
    Closed,
    Reassigned,
    Reopened,
    Resolved,
    Resumed,
    Returned,
    SlaClassOrdered,
    SlaClockPaused,
    SlaClockResumed,
    SlaClockStarted,
    SlaClockStopped,
    Suspended,
)
from civicgrid.sla.domain.clocks import SLA_SOURCE, Clock, Clocks, Status
from civicgrid.sla.domain.policy import SlaPolicyVersion

SLA_ACTOR = Actor(kind=ActorKind.SERVICE, id=SLA_SOURCE)

TRIGGERS = frozenset(
    {
        "assigned",
        "accepted",
        "arrived",
        "returned",
        "reassigned",
        "suspended",
        "resumed",
        "resolved",
        "reopened",
        "closed",
        "sla_class_ordered",
    }
)
"""Incident events whose effects the sla service records (with the event as their cause)."""

DueAt = Callable[[datetime, Any], datetime]
"""The calendar's ``due(start, duration)``."""


class NoSuchClass(ValueError):
    """The assignment names an SLA class the clock's policy version does not have."""


def envelope(cause: IncidentEvent | None, incident_id: str, correlation_id: str) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "source": SLA_SOURCE,
        "actor": SLA_ACTOR,
        "correlation_id": correlation_id,
        "causation_id": cause.event_id if cause is not None else None,
    }


def effects(
    clocks: Clocks, event: IncidentEvent, policy: SlaPolicyVersion, due: DueAt
) -> list[IncidentEvent]:
    at = event.occurred_at
    env = envelope(event, event.incident_id, event.correlation_id)
    if isinstance(event, Assigned):
        if clocks.closed:
            return []
        return _on_assigned(clocks, event, policy, due, env)
    if isinstance(event, SlaClassOrdered):
        if clocks.closed:
            return []
        return _on_class_ordered(clocks, event, policy, due, env)
    if isinstance(event, Returned | Reassigned):
        return [
            _stop(c, ClockStopReason.SUPERSEDED, at, env)
            for c in clocks.active()
            if c.name in ("accept", "arrive")
        ]
    if isinstance(event, Accepted):
        return _met(clocks, "accept", at, env)
    if isinstance(event, Arrived):
        return _met(clocks, "arrive", at, env)
    if isinstance(event, Resolved):
        stops = [
            _stop(c, ClockStopReason.CANCELLED, at, env)
            for c in clocks.active()
            if c.name in ("accept", "arrive")
        ]
        return stops + _met(clocks, "resolve", at, env)
    if isinstance(event, Suspended):
        return [
            SlaClockPaused(**env, clock=c.name, clock_version=c.version, paused_at=at)
            for c in clocks.running()
        ]
    if isinstance(event, Resumed):
        resumed: list[IncidentEvent] = []
        for c in clocks.active():
            if c.status is Status.PAUSED and c.paused_at is not None:
                paused = max(at - c.paused_at, at - at)
                resumed.append(
                    SlaClockResumed(
                        **env,
                        clock=c.name,
                        clock_version=c.version,
                        due_at=c.due_at + paused,
                        paused_s=paused.total_seconds(),
                    )
                )
        return resumed
    if isinstance(event, Reopened):
        resolve = clocks.by_name.get("resolve")
        if resolve is not None and resolve.active:
            return []
        unit = _unit_of(clocks)
        return [_start(clocks, "resolve", _class_of(clocks, policy), unit, at, policy, due, env)]
    if isinstance(event, Closed):
        return [_stop(c, ClockStopReason.CANCELLED, at, env) for c in clocks.active()]
    return []


def _on_assigned(
    clocks: Clocks, event: Assigned, policy: SlaPolicyVersion, due: DueAt, env: dict[str, Any]
) -> list[IncidentEvent]:
    at = event.occurred_at
    out: list[IncidentEvent] = []
    # The command centre's order stands over the matter's class that routing assigns with;
    # a clock the ordered class has no deadline for (arrive) is not started.
    ordered = _ordered_class(clocks, policy)
    sla_class = ordered or event.sla_class
    per_unit: tuple[str, ...] = ("accept", "arrive") if event.on_site else ("accept",)
    if ordered is not None:
        per_unit = tuple(n for n in per_unit if policy.deadlines(ordered).of(n) is not None)
    for clock in clocks.active():
        if clock.name in ("accept", "arrive"):
            # A new dispatch: the previous unit's clock is superseded by the new unit's.
            out.append(_stop(clock, ClockStopReason.SUPERSEDED, at, env))
    for name in per_unit:
        out.append(_start(clocks, name, sla_class, event.lead_unit, at, policy, due, env))
    resolve = clocks.by_name.get("resolve")
    if resolve is None or not resolve.active:
        lead = event.lead_unit
        out.append(_start(clocks, "resolve", sla_class, lead, at, policy, due, env))
    return out


def _on_class_ordered(
    clocks: Clocks,
    event: SlaClassOrdered,
    policy: SlaPolicyVersion,
    due: DueAt,
    env: dict[str, Any],
) -> list[IncidentEvent]:
    """Restart, from the order's time, every active clock whose deadline the new class changes.

    The old instance stops as ``superseded`` and a new version starts under the ordered class
    (its schedules replace the old one's: one subject per clock and stage); a paused clock's
    successor starts paused. A clock the new class has no deadline for is cancelled. Clocks
    that stopped stay stopped; a clock whose deadline is the same keeps running untouched.
    """
    new_class = event.sla_class
    if new_class not in policy.classes:
        # The incident's policy version does not have it (intake checks sla.yaml; a version
        # published later may differ): nothing restarts, and the handler reports it.
        return []
    at = event.occurred_at
    out: list[IncidentEvent] = []
    for clock in clocks.active():
        if clock.sla_class == new_class:
            continue
        new_duration = policy.deadlines(new_class).of(clock.name)
        if new_duration is None:
            out.append(_stop(clock, ClockStopReason.CANCELLED, at, env))
            continue
        if str(new_duration) == _duration_of(clock, policy):
            continue
        out.append(_stop(clock, ClockStopReason.SUPERSEDED, at, env))
        started = _start(clocks, clock.name, new_class, clock.unit, at, policy, due, env)
        out.append(started)
        if clock.status is Status.PAUSED:
            out.append(
                SlaClockPaused(
                    **env, clock=clock.name, clock_version=started.clock_version, paused_at=at
                )
            )
    return out


def _duration_of(clock: Clock, policy: SlaPolicyVersion) -> str | None:
    """The duration the clock runs for, as the policy wrote it (recorded since it was added)."""
    if clock.duration is not None:
        return clock.duration
    deadlines = policy.classes.get(clock.sla_class)
    duration = deadlines.of(clock.name) if deadlines is not None else None
    return str(duration) if duration is not None else None


def _ordered_class(clocks: Clocks, policy: SlaPolicyVersion) -> str | None:
    ordered = clocks.ordered_class
    return ordered if ordered is not None and ordered in policy.classes else None


def _start(
    clocks: Clocks,
    name: str,
    sla_class: str,
    unit: UnitRef | None,
    at: datetime,
    policy: SlaPolicyVersion,
    due: DueAt,
    env: dict[str, Any],
) -> SlaClockStarted:
    try:
        duration = policy.deadlines(sla_class).of(name)
    except KeyError as exc:
        raise NoSuchClass(str(exc)) from exc
    if duration is None:
        raise NoSuchClass(f"SLA class {sla_class!r} has no {name!r} deadline")
    due_at = due(at, duration)
    warn_ats = tuple(at + (due_at - at) * ratio for ratio in policy.warning_ratios)
    return SlaClockStarted(
        **env,
        clock=name,
        sla_class=sla_class,
        started_at=at,
        due_at=due_at,
        warn_at=warn_ats[0] if warn_ats else due_at,
        warn_ats=warn_ats,
        clock_version=clocks.next_version(name),
        unit=unit,
        policy_version=policy.policy_version,
        duration=str(duration),
    )


def _stop(
    clock: Clock, reason: ClockStopReason, at: datetime, env: dict[str, Any]
) -> IncidentEvent:
    # A paused clock stopped while paused is judged at the moment it was paused.
    judged_at = clock.paused_at if clock.status is Status.PAUSED and clock.paused_at else at
    late = (judged_at - clock.due_at).total_seconds()
    return SlaClockStopped(
        **env,
        clock=clock.name,
        reason=reason,
        on_time=(late <= 0) if reason is ClockStopReason.MET else None,
        clock_version=clock.version,
        late_s=max(late, 0.0) if reason is ClockStopReason.MET else None,
    )


def _met(clocks: Clocks, name: str, at: datetime, env: dict[str, Any]) -> list[IncidentEvent]:
    clock = clocks.by_name.get(name)
    if clock is None or not clock.active:
        return []
    return [_stop(clock, ClockStopReason.MET, at, env)]


def _class_of(clocks: Clocks, policy: SlaPolicyVersion) -> str:
    ordered = _ordered_class(clocks, policy)
    if ordered is not None:
        return ordered
    if clocks.last_assignment is not None:
        return clocks.last_assignment.sla_class
    resolve = clocks.by_name.get("resolve")
    return resolve.sla_class if resolve is not None else "standard"


def _unit_of(clocks: Clocks) -> UnitRef | None:
    return clocks.last_assignment.lead_unit if clocks.last_assignment is not None else None
