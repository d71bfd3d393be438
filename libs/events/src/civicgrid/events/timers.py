"""Durable timers as JetStream message schedules (ADR-51) in the stream ``SLA_TIMERS``.

One schedule subject per deadline, ``sla.timer.<incident_id>.<clock>.<stage>``, holding one
``Nats-Schedule: @at <RFC3339>`` message that the server turns into a firing on
``sla.fired.<incident_id>.<clock>.<stage>`` at that time (then removes the schedule).

- Arming publishes with ``Nats-Rollup: sub``: the new schedule replaces whatever the subject
  held, so re-arming is one publish and never leaves an older schedule behind.
- Cancelling purges the subject.
- A schedule whose time passed while the server or every consumer was down fires as soon as the
  server runs; the firing waits in the stream for the durable consumer.
- Firings carry a TTL (``Nats-Schedule-TTL``), so the stream, which has limits retention
  (work-queue or interest retention would delete schedules on ack), does not grow for ever.

Timers hold no truth: every firing is fenced by its consumer against the clock's state.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import Field

from civicgrid.events import streams, subjects
from civicgrid.events.base import AwareDatetime, Contract, utc_now

SCHEDULE = "Nats-Schedule"
SCHEDULE_TARGET = "Nats-Schedule-Target"
SCHEDULE_TTL = "Nats-Schedule-TTL"
ROLLUP = "Nats-Rollup"
SCHEDULER = "Nats-Scheduler"

# Long enough for any outage we recover from by consuming; beyond it the sla auditor repairs.
FIRING_TTL = "168h"


class TimerFiring(Contract):
    """The body of a schedule, delivered unchanged as its firing."""

    incident_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    clock: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    stage: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    clock_version: int = Field(ge=1)
    step: int = Field(default=1, ge=1)
    repeat: int = Field(default=0, ge=0)
    fire_at: AwareDatetime
    armed_at: AwareDatetime = Field(default_factory=utc_now)
    correlation_id: str = Field(default="", max_length=128)

    @property
    def schedule_subject(self) -> str:
        return subjects.sla_timer(self.incident_id, self.clock, self.stage)

    @property
    def target_subject(self) -> str:
        return subjects.sla_fired(self.incident_id, self.clock, self.stage)


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a schedule time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def schedule_headers(firing: TimerFiring, *, ttl: str = FIRING_TTL) -> dict[str, str]:
    return {
        SCHEDULE: f"@at {rfc3339(firing.fire_at)}",
        SCHEDULE_TARGET: firing.target_subject,
        SCHEDULE_TTL: ttl,
        ROLLUP: "sub",
    }


async def arm(
    js: JetStreamContext, firing: TimerFiring, *, ttl: str = FIRING_TTL, timeout_s: float = 5.0
) -> int:
    """Arm (or re-arm: replace) the schedule for this deadline; returns its stream sequence."""
    ack = await js.publish(
        firing.schedule_subject,
        firing.model_dump_json().encode(),
        timeout=timeout_s,
        stream=streams.SLA_TIMERS,
        headers=schedule_headers(firing, ttl=ttl),
    )
    return int(ack.seq)


async def cancel(js: JetStreamContext, incident_id: str, clock: str, stage: str) -> None:
    """Remove the schedule of this deadline, if any: nothing fires for it afterwards."""
    await js.purge_stream(streams.SLA_TIMERS, subject=subjects.sla_timer(incident_id, clock, stage))


async def pending_subjects(js: JetStreamContext, incident_id: str | None = None) -> set[str]:
    """Schedule subjects holding a schedule (all, or one incident's)."""
    filter_subject = (
        f"{subjects.SLA_TIMER_PREFIX}.>"
        if incident_id is None
        else f"{subjects.SLA_TIMER_PREFIX}.{incident_id}.>"
    )
    info = await js.stream_info(streams.SLA_TIMERS, subjects_filter=filter_subject)
    return set((info.state.subjects or {}).keys())


async def pending_count(js: JetStreamContext) -> int:
    """How many schedules wait (each schedule subject holds exactly one message)."""
    return len(await pending_subjects(js))


def decode_firing(msg: Msg) -> TimerFiring:
    """A firing's body; ValueError (or pydantic's ValidationError) when it cannot be one."""
    if not msg.subject.startswith(f"{subjects.SLA_FIRED_PREFIX}."):
        raise ValueError(f"{msg.subject!r} is not a timer firing subject")
    firing = TimerFiring.model_validate_json(msg.data)
    if msg.subject != firing.target_subject:
        raise ValueError(f"firing on {msg.subject!r} says it belongs on {firing.target_subject!r}")
    return firing
