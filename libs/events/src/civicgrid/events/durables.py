"""The durable consumers each service owns: their names live here and nowhere else.

The NATS grants (``permissions``) are derived from this mapping: a service may create, update,
delete, read and pull only its own durables, and every other user is denied them by name.
A service's ``ConsumerSpec`` takes its ``durable`` from the constant here, so a durable that is
not declared cannot exist in code (a test checks every composition root against it).

Readers without a durable (intake's duplicate index, reporting's projector, other systems) use
ephemeral or ordered consumers, which need no name here.
"""

from __future__ import annotations

from dataclasses import dataclass

from civicgrid.events import streams


@dataclass(frozen=True)
class Durable:
    stream: str
    name: str


INTAKE_MERGES = Durable(streams.INCIDENTS, "intake-merges")
ROUTING = Durable(streams.INCIDENTS, "routing")
SLA_CLOCKS = Durable(streams.INCIDENTS, "sla-clocks")
SLA_TIMERS = Durable(streams.SLA_TIMERS, "sla-timers")


# Every work consumer has a twin on the DLQ that takes replays of its dead letters (redrive.py).
REDRIVE_SUFFIX = "-redrive"


def _with_redrive_twins(*work: Durable) -> tuple[Durable, ...]:
    return (*work, *(Durable(streams.DLQ, f"{d.name}{REDRIVE_SUFFIX}") for d in work))


OWNED: dict[str, tuple[Durable, ...]] = {
    "intake": _with_redrive_twins(INTAKE_MERGES),
    "routing": _with_redrive_twins(ROUTING),
    "sla": _with_redrive_twins(SLA_CLOCKS, SLA_TIMERS),
    # Reporting's projector reads with an ephemeral consumer and owns no durable.
    "reporting": (),
}


def owner_of(durable: Durable) -> str:
    for service, owned in OWNED.items():
        if durable in owned:
            return service
    raise KeyError(f"no service declares durable {durable.name!r} on {durable.stream}")


def all_durables() -> tuple[Durable, ...]:
    return tuple(durable for owned in OWNED.values() for durable in owned)
