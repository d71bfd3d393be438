"""A level with ``repeat_every`` reminds again (repeated 催办) until the next level takes over;
a stop of the clock ends the reminders."""

from __future__ import annotations

from datetime import timedelta

import pytest

from civicgrid.events.incident_events import Escalated, SlaClockStarted
from civicgrid.sla.domain.policy import SlaPolicyVersion
from tests.support.events.waiting import eventually
from tests.support.sla import policy, rung
from tests.support.sla_nats import SlaWorld

from .conftest import StartSla


@pytest.fixture
def test_policy() -> SlaPolicyVersion:
    return policy(
        accept="30m",
        resolve="3s",
        warnings=(),
        ladder=(
            rung("community-head", "0s", "community_head", every="1s"),
            rung("command-centre", "3s", "command_centre"),
        ),
    )


async def test_a_level_repeats_until_the_next_level_then_the_ladder_ends(
    start_sla: StartSla, world: SlaWorld
) -> None:
    await start_sla()
    script = world.incident()
    await world.append(script.reported())
    await world.append(script.assigned())
    await world.append(script.accepted())
    [started] = await world.wait_for(script.incident_id, "sla_clock_started:resolve")
    assert isinstance(started, SlaClockStarted)
    found = await world.wait_for(script.incident_id, "escalated:resolve", 4, within_s=20)

    async def settled() -> bool:
        return not await world.pending(script.incident_id)

    await eventually(settled, what="the ladder finished")
    found = [e for e in await world.sla_events(script.incident_id) if isinstance(e, Escalated)]
    assert [(e.ladder_level, e.repeat) for e in found] == [(1, 0), (1, 1), (1, 2), (2, 0)]
    for escalated, after_s in zip(found, (0, 1, 2, 3), strict=True):
        assert escalated.occurred_at >= started.due_at + timedelta(seconds=after_s)


async def test_resolving_ends_the_reminders(start_sla: StartSla, world: SlaWorld) -> None:
    await start_sla()
    script = world.incident()
    await world.append(script.reported())
    await world.append(script.assigned())
    await world.append(script.accepted())
    await world.wait_for(script.incident_id, "escalated:resolve", 2, within_s=20)
    await world.append((await world.now(script)).resolved())
    await world.wait_for(script.incident_id, "sla_clock_stopped:resolve")

    async def settled() -> bool:
        return not await world.pending(script.incident_id)

    await eventually(settled, what="reminders cancelled")
    count = len(await world.wait_for(script.incident_id, "escalated:resolve", 2))
    # Another incident's whole ladder later, this one has no reminder after the stop.
    control = world.incident()
    await world.append(control.reported())
    await world.append(control.assigned())
    await world.append(control.accepted())
    await world.wait_for(control.incident_id, "escalated:resolve", 4, within_s=20)
    stopped_at = next(
        e.occurred_at
        for e in await world.sla_events(script.incident_id)
        if e.event_type == "sla_clock_stopped" and getattr(e, "clock", "") == "resolve"
    )
    after = [
        e
        for e in await world.sla_events(script.incident_id)
        if e.event_type == "escalated" and e.occurred_at > stopped_at
    ]
    assert after == [] and count >= 2
