"""Pure decisions on an incident's history: bring its clocks up to date, judge a timer firing,
and say which schedules should be armed.

The walk places the sla service's recorded reaction to an incident event (events whose
``causation_id`` is that event's id) right at the event, and computes the reaction of any event
not yet reacted to. Whatever order, replica or redelivery handled the events, the same history
gives the same clocks and the same missing events: that is what makes the handlers idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from civicgrid.events.base import IncidentEvent, UnitKind, UnitRef
from civicgrid.events.incident_events import Escalated, SlaBreached, SlaWarning
from civicgrid.sla.domain.clocks import SLA_SOURCE, Clock, Clocks, Status, apply
from civicgrid.sla.domain.policy import LadderLevel, SlaPolicyVersion
from civicgrid.sla.domain.rules import TRIGGERS, DueAt, effects, envelope

# A firing a little ahead of the fold's time still counts (the server's clock and ours differ).
EARLY_TOLERANCE = timedelta(milliseconds=500)

STAGES = ("warning", "breach", "escalation")
# The causation id of what a firing appends (never an event id, so never a trigger's).
FIRING_CAUSE_PREFIX = "timer:"


@dataclass(frozen=True)
class Firing:
    """What a timer firing says; the fence compares it with the clock's current state."""

    incident_id: str
    clock: str
    clock_version: int
    stage: str
    step: int = 1
    """The warning number, or the ladder level."""
    repeat: int = 0
    fire_at: datetime | None = None

    @property
    def cause_key(self) -> str:
        steps = f"{self.clock_version}:{self.stage}:{self.step}:{self.repeat}"
        return f"{FIRING_CAUSE_PREFIX}{self.clock}:{steps}"


@dataclass(frozen=True)
class Walked:
    clocks: Clocks
    missing: tuple[IncidentEvent, ...]
    """Reactions to incident events not yet recorded, in the order to append them."""


def walk(
    incident_id: str,
    history: Sequence[IncidentEvent],
    policy: SlaPolicyVersion,
    due: DueAt,
) -> Walked:
    trigger_ids = {e.event_id for e in history if e.event_type in TRIGGERS}
    recorded: dict[str, list[IncidentEvent]] = {}
    for event in history:
        if event.source == SLA_SOURCE and event.causation_id in trigger_ids:
            recorded.setdefault(event.causation_id, []).append(event)
    clocks = Clocks(incident_id)
    missing: list[IncidentEvent] = []
    for event in history:
        if event.source == SLA_SOURCE and event.causation_id in trigger_ids:
            continue  # applied at its cause
        clocks = apply(clocks, event)
        if event.event_type not in TRIGGERS:
            continue
        reaction = list(recorded.get(event.event_id, ()))
        if len(reaction) < len(computed := effects(clocks, event, policy, due)):
            # Nothing, or only the first part of the reaction was stored (a crash between two
            # appends): the rest is what the same decision, made again, adds after it.
            rest = computed[len(reaction) :]
            missing += rest
            reaction += rest
        for effect in reaction:
            clocks = apply(clocks, effect)
    return Walked(clocks, tuple(missing))


def pinned_policy_version(history: Sequence[IncidentEvent]) -> int | None:
    """The policy version the incident's first clock started under (None: use the current)."""
    for event in history:
        version = getattr(event, "policy_version", None)
        if event.event_type == "sla_clock_started" and version is not None:
            return int(version)
    return None


# Timers -------------------------------------------------------------------------------------


def next_escalation(
    clock: Clock, ladder: Sequence[LadderLevel]
) -> tuple[int, int, datetime] | None:
    """The next (level, repeat, time) of the ladder for a breached clock, or None."""
    if not ladder or not clock.breached:
        return None

    def at(level: int, repeat: int) -> datetime:
        rung = ladder[level - 1]
        every = rung.repeat_every.as_timedelta() if rung.repeat_every else timedelta(0)
        return clock.due_at + rung.after.as_timedelta() + every * repeat

    if not clock.escalations:
        return 1, 0, at(1, 0)
    level, repeat = max(clock.escalations)
    options: list[tuple[datetime, int, int]] = []
    if level < len(ladder):
        options.append((at(level + 1, 0), level + 1, 0))
    if ladder[level - 1].repeat_every is not None:
        repeat_at = at(level, repeat + 1)
        # A repeat due at or after the next level gives way to it.
        if not options or repeat_at < options[0][0]:
            options = [(repeat_at, level, repeat + 1)]
    if not options:
        return None
    when, level, repeat = options[0]
    return level, repeat, when


def pending_firings(
    incident_id: str, clock: Clock, policy: SlaPolicyVersion
) -> dict[str, Firing | None]:
    """For each stage, the one firing that should be armed now (None: nothing to arm)."""
    wanted: dict[str, Firing | None] = dict.fromkeys(STAGES)
    if clock.status is not Status.RUNNING:
        return wanted

    def firing(stage: str, at: datetime, step: int = 1, repeat: int = 0) -> Firing:
        return Firing(incident_id, clock.name, clock.version, stage, step, repeat, at)

    if clock.warnings < len(clock.warn_leads) and not clock.breached:
        number = clock.warnings + 1
        wanted["warning"] = firing("warning", clock.warning_at(number), number)
    if not clock.breached:
        wanted["breach"] = firing("breach", clock.due_at)
    step = next_escalation(clock, policy.ladder)
    if step is not None:
        level, repeat, when = step
        wanted["escalation"] = firing("escalation", when, level, repeat)
    return wanted


# Firings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    events: tuple[IncidentEvent, ...]
    verdict: str
    """fired, stale (another version, stopped, paused), duplicate, early."""
    notify: tuple[tuple[UnitRef, IncidentEvent], ...] = ()


UnitResolver = Callable[[str, Clocks, Clock], UnitRef | None]
"""Who a ladder role (community_head, ...) stands for on this incident."""


def judge_firing(
    clocks: Clocks,
    firing: Firing,
    policy: SlaPolicyVersion,
    now: datetime,
    *,
    correlation_id: str,
    notify_unit: UnitResolver,
) -> Judged:
    """The fence: a firing appends only when it is exactly the clock's next pending step."""
    clock = clocks.by_name.get(firing.clock)
    if clock is None or clock.version != firing.clock_version or clock.status is not Status.RUNNING:
        return Judged((), "stale")
    wanted = pending_firings(clocks.incident_id, clock, policy).get(firing.stage)
    if wanted is None or (wanted.step, wanted.repeat) != (firing.step, firing.repeat):
        return Judged((), "duplicate" if _already(clock, firing) else "stale")
    assert wanted.fire_at is not None
    if wanted.fire_at > now + EARLY_TOLERANCE:
        return Judged((), "early")
    env = envelope(None, clocks.incident_id, correlation_id)
    env["causation_id"] = firing.cause_key
    event: IncidentEvent
    if firing.stage == "warning":
        event = SlaWarning(
            **env,
            clock=clock.name,
            due_at=clock.due_at,
            clock_version=clock.version,
            warning_no=firing.step,
        )
        target = clock.unit
    elif firing.stage == "breach":
        event = SlaBreached(
            **env, clock=clock.name, due_at=clock.due_at, clock_version=clock.version
        )
        target = clock.unit
    else:
        rung = policy.ladder[firing.step - 1]
        target = notify_unit(rung.notify, clocks, clock)
        role = rung.notify
        overdue = (now - clock.due_at).total_seconds()
        event = Escalated(
            **env,
            clock=clock.name,
            ladder_level=firing.step,
            ladder_name=rung.name,
            notify_unit=target,
            request_reassignment=rung.reassign and firing.repeat == 0,
            reason=(
                f"{clock.name} deadline {clock.due_at.isoformat()} missed by {overdue:.0f} s:"
                f" ladder level {firing.step} ({rung.id})"
                + (f", reminder {firing.repeat}" if firing.repeat else "")
            ),
            clock_version=clock.version,
            notify_role=role,
            repeat=firing.repeat,
            due_at=clock.due_at,
            late_s=max(overdue, 0.0),
        )
    notify = ((target, event),) if target is not None else ()
    return Judged((event,), "fired", notify)


def _already(clock: Clock, firing: Firing) -> bool:
    if firing.stage == "warning":
        return firing.step <= clock.warnings
    if firing.stage == "breach":
        return clock.breached
    return (firing.step, firing.repeat) in clock.escalations


def default_notify_unit(role: str, clocks: Clocks, clock: Clock) -> UnitRef | None:
    """Who a ladder role stands for on this incident (the command centre when unknown)."""
    assignment = clocks.last_assignment
    if role == "community_head" and assignment and assignment.jurisdiction.community_id:
        return UnitRef(kind=UnitKind.COMMUNITY, id=assignment.jurisdiction.community_id)
    if role == "department_head" and clock.unit and clock.unit.kind is UnitKind.DEPARTMENT:
        return clock.unit
    return UnitRef(kind=UnitKind.COMMAND_CENTRE, id="command-centre")
