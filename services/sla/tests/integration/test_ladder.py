"""The whole ladder on a real nats-server with a second-scale policy (accept 3 s, resolve 5 s,
a warning at 50 %, level 1 at the breach and level 2 a second later)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from civicgrid.events.incident_events import (
    Escalated,
    SlaBreached,
    SlaClockStarted,
    SlaClockStopped,
    SlaWarning,
)
from civicgrid.events.notifications import SlaNotification
from tests.support.events.waiting import eventually
from tests.support.sla import GRID_B
from tests.support.sla_nats import SlaWorld, labels

from .conftest import StartSla


async def test_warning_breach_and_two_ladder_levels_fire_in_order_once_each(
    start_sla: StartSla, world: SlaWorld, nc: NatsClient
) -> None:
    sla = await start_sla()
    notified: list[tuple[str, SlaNotification]] = []

    async def on_notice(msg: Msg) -> None:
        notified.append((msg.subject, SlaNotification.model_validate_json(msg.data)))

    subscription = await nc.subscribe("notify.>", cb=on_notice)
    script = world.incident()
    await world.append(script.reported())
    assigned = await world.append(script.assigned())
    [accept, resolve] = await world.wait_for(script.incident_id, "sla_clock_started", 2)
    assert isinstance(resolve, SlaClockStarted) and resolve.clock == "resolve"
    assert resolve.due_at == assigned.occurred_at + timedelta(seconds=5)
    await world.wait_for(script.incident_id, "escalated:resolve", 2, within_s=20)

    async def settled() -> bool:
        return not await world.pending(script.incident_id)

    await eventually(settled, what="no schedule left for the incident")
    resolve_events = [
        e
        for e in await world.sla_events(script.incident_id)
        if getattr(e, "clock", "") == "resolve"
    ]
    assert labels(resolve_events) == [
        "sla_clock_started:resolve",
        "sla_warning:resolve",
        "sla_breached:resolve",
        "escalated:resolve",
        "escalated:resolve",
    ]
    warning, breach, level1, level2 = resolve_events[1:]
    assert isinstance(warning, SlaWarning) and isinstance(breach, SlaBreached)
    assert warning.occurred_at >= resolve.warn_at
    assert breach.occurred_at >= resolve.due_at
    assert isinstance(level1, Escalated) and isinstance(level2, Escalated)
    assert (level1.ladder_level, level2.ladder_level) == (1, 2)
    assert level1.request_reassignment and not level2.request_reassignment
    assert level2.occurred_at >= resolve.due_at + timedelta(seconds=1)
    # accept breached too (3 s): its own warning, breach and ladder.
    accept_labels = labels(
        [
            e
            for e in await world.sla_events(script.incident_id)
            if getattr(e, "clock", "") == "accept"
        ]
    )
    assert accept_labels == [
        "sla_clock_started:accept",
        "sla_warning:accept",
        "sla_breached:accept",
        "escalated:accept",
        "escalated:accept",
    ]
    assert isinstance(accept, SlaClockStarted)

    async def all_notified() -> bool:
        return len([n for _, n in notified if n.incident_id == script.incident_id]) >= 8

    await eventually(all_notified, what="a notification per warning, breach and level")
    await subscription.unsubscribe()
    mine = [(s, n) for s, n in notified if n.incident_id == script.incident_id]
    subjects = {(n.kind, n.clock, n.ladder_level): s for s, n in mine}
    assert subjects[("escalated", "resolve", 1)] == "notify.community.c01"
    assert subjects[("escalated", "resolve", 2)] == "notify.command_centre.command-centre"
    assert subjects[("sla_breached", "resolve", None)] == "notify.grid.c01-g001"
    # Two clocks, each: a warning, a breach and two levels.
    assert len(mine) == 8
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in sla.service.registry.collect()
        for sample in metric.samples
    }
    assert samples[("civicgrid_sla_escalations_total", (("clock", "resolve"), ("level", "2")))] == 1
    assert samples[("civicgrid_sla_breaches_total", (("clock", "accept"),))] == 1
    lateness = ("civicgrid_sla_firing_lateness_seconds_count", (("stage", "escalation"),))
    assert samples[lateness] == 4
    assert not any("incident" in str(labels) for _, labels in samples)


async def test_resolving_a_second_before_the_deadline_gives_no_breach(
    start_sla: StartSla, world: SlaWorld
) -> None:
    await start_sla()
    early, control = world.incident(), world.incident()
    for script in (early, control):
        await world.append(script.reported())
        await world.append(script.assigned())
        await world.append(script.accepted())
    [started] = await world.wait_for(early.incident_id, "sla_clock_started:resolve")
    assert isinstance(started, SlaClockStarted)
    await world.wait_for(early.incident_id, "sla_warning:resolve")
    remaining = (started.due_at - (await world.now(early)).now).total_seconds()
    await asyncio.sleep(max(remaining - 1.0, 0))  # act at 1 s before the deadline, on purpose
    resolved = await world.append((await world.now(early)).resolved())
    assert resolved.occurred_at < started.due_at
    [stopped] = await world.wait_for(early.incident_id, "sla_clock_stopped:resolve")
    assert isinstance(stopped, SlaClockStopped) and stopped.on_time is True
    # The control, due at the same moment, breaches: by then the early one would have too.
    await world.wait_for(control.incident_id, "escalated:resolve", 2)
    assert "sla_breached:resolve" not in labels(await world.sla_events(early.incident_id))
    assert not {s for s in await world.pending(early.incident_id) if ".resolve." in s}


async def test_suspension_moves_the_breach_by_the_paused_time(
    start_sla: StartSla, world: SlaWorld
) -> None:
    await start_sla()
    script = world.incident()
    await world.append(script.reported())
    await world.append(script.assigned())
    await world.append(script.accepted())
    [started] = await world.wait_for(script.incident_id, "sla_clock_started:resolve")
    assert isinstance(started, SlaClockStarted)
    suspended = await world.append((await world.now(script)).suspended())
    await world.wait_for(script.incident_id, "sla_clock_paused:resolve")
    await asyncio.sleep(2.0)  # the pause being measured, not a wait for a condition
    resumed = await world.append((await world.now(script)).resumed())
    [breach] = await world.wait_for(script.incident_id, "sla_breached:resolve", within_s=20)
    paused = resumed.occurred_at - suspended.occurred_at
    assert isinstance(breach, SlaBreached)
    assert breach.due_at == started.due_at + paused
    assert breach.occurred_at >= started.due_at + paused


async def test_an_extension_moves_the_breach(start_sla: StartSla, world: SlaWorld) -> None:
    await start_sla()
    script = world.incident()
    await world.append(script.reported())
    await world.append(script.assigned())
    await world.append(script.accepted())
    [started] = await world.wait_for(script.incident_id, "sla_clock_started:resolve")
    assert isinstance(started, SlaClockStarted)
    new_due = started.due_at + timedelta(seconds=3)
    await world.append((await world.now(script)).extended(new_due))
    [breach] = await world.wait_for(script.incident_id, "sla_breached:resolve", within_s=20)
    assert isinstance(breach, SlaBreached)
    assert breach.due_at == new_due and breach.occurred_at >= new_due


async def test_a_return_restarts_accept_for_the_new_unit(
    start_sla: StartSla, world: SlaWorld
) -> None:
    await start_sla()
    script = world.incident()
    await world.append(script.reported())
    await world.append(script.assigned())
    await world.wait_for(script.incident_id, "sla_clock_started:accept")
    await world.append((await world.now(script)).returned())
    await world.append((await world.now(script)).assigned(GRID_B))
    starts = await world.wait_for(script.incident_id, "sla_clock_started:accept", 2)
    second = starts[1]
    assert isinstance(second, SlaClockStarted)
    assert second.unit == GRID_B and second.clock_version == 2
    [superseded] = await world.wait_for(script.incident_id, "sla_clock_stopped:accept")
    assert isinstance(superseded, SlaClockStopped) and superseded.reason.value == "superseded"
    [breach] = await world.wait_for(script.incident_id, "sla_breached:accept", within_s=20)
    assert isinstance(breach, SlaBreached) and breach.clock_version == 2
    assert breach.due_at == second.due_at


async def test_closing_cancels_pending_schedules_and_nothing_fires_later(
    start_sla: StartSla, world: SlaWorld
) -> None:
    await start_sla()
    closed, control = world.incident(), world.incident()
    for script in (closed, control):
        await world.append(script.reported())
        await world.append(script.assigned())
    await world.wait_for(closed.incident_id, "sla_clock_started", 2)
    assert await world.pending(closed.incident_id)
    await world.append((await world.now(closed)).closed())
    await world.wait_for(closed.incident_id, "sla_clock_stopped", 2)

    async def cancelled() -> bool:
        return not await world.pending(closed.incident_id)

    await eventually(cancelled, what="every schedule of the closed incident purged")
    await world.wait_for(control.incident_id, "escalated:resolve", 2, within_s=20)
    # (A warning may have fired before the close was handled; breaches come after it.)
    late = [
        label
        for label in labels(await world.sla_events(closed.incident_id))
        if label.startswith(("sla_breached", "escalated"))
    ]
    assert late == []
