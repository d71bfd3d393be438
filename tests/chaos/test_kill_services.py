"""Chaos on one nats-server: services killed with -9 during load, nats-server killed during load,
two replicas of every service. Afterwards the stream holds exactly what it should."""

from __future__ import annotations

import asyncio

import pytest

from civicgrid.events.incident_events import SlaBreached
from tests.support.events.waiting import eventually
from tests.support.fast_sla import LADDER_LEVELS, publish_seconds_scale_policy
from tests.support.figures import reporting_problems
from tests.support.ledger import Ledger, read_ledger
from tests.support.load import Load, report_bodies, shipped_city
from tests.support.processes import SERVICES, Platform, ServiceProcess

SETTLE_WITHIN_S = 60.0


async def settled(
    platform: Platform,
    load: Load,
    within_s: float = SETTLE_WITHIN_S,
    ladder_levels: int | None = None,
) -> Ledger:
    """The ledger once every incident is assigned and its clocks started: then
    nothing more happens until the first deadline, half an hour away. With a seconds-scale
    policy of ``ladder_levels`` rungs: once every clock breached and climbed them all."""
    last: list[Ledger] = []

    async def all_assigned_and_clocked() -> Ledger | None:
        ledger = await read_ledger(platform.admin_seeds())
        last[:] = [ledger]
        done = ledger.reported_incidents() and not ledger.unassigned()
        done = done and not ledger.unclocked()
        done = done and not (ladder_levels and ledger.unfinished_clocks(ladder_levels))
        return ledger if done else None

    try:
        return await eventually(
            all_assigned_and_clocked,
            within_s=within_s,
            interval_s=0.5,
            what="every incident assigned and its clocks started",
        )
    except AssertionError as exc:
        found = last[0].problems(load.receipts) if last else ["the stream was never read"]
        if last and ladder_levels:
            unfinished = sorted(last[0].unfinished_clocks(ladder_levels))
            found.append(
                f"{len(unfinished)} incidents' clocks not through the ladder: {unfinished[:5]}"
            )
        raise AssertionError("\n".join([str(exc), *found, platform.logs()])) from None


async def progressed(load: Load, by: int, within_s: float = 30.0) -> None:
    """Until the load has had ``by`` more reports taken (or tried ``by`` more times)."""
    start = load.accepted + load.retries

    async def moved() -> bool:
        return load.accepted + load.retries >= start + by

    await eventually(moved, within_s=within_s, interval_s=0.05, what=f"{by} more reports sent")


async def check(ledger: Ledger, load: Load, platform: Platform) -> None:
    """Exactly the events there should be, and every reporting replica's figures equal a
    recount from the stream."""
    assert not load.refused, load.refused[:5]
    assert load.sent > 0 and load.accepted == load.sent
    problems = ledger.problems(load.receipts)
    problems += await reporting_problems(ledger, [p.url for p in platform.of("reporting")])
    assert not problems, "\n".join(problems) + "\n" + platform.logs()


@pytest.mark.timeout(240)
async def test_kill_9_each_service_in_turn_during_load_loses_and_doubles_nothing(
    platform: Platform,
) -> None:
    # Deadlines of seconds: warnings, breaches and escalations fire while services die.
    await publish_seconds_scale_policy(platform.admin_seeds())
    running = {service: platform.add(service) for service in SERVICES}
    await platform.start_all()
    # A slower load than the others: every incident's clocks make a dozen timer firings. It
    # lasts until every service has died and come back (restarts take seconds each, more on a
    # busy machine), then stops; the bodies are only an upper bound.
    bodies = report_bodies(shipped_city(), 900, seed=1)
    load = Load([running["intake"].url], platform.api_key, bodies, rate=10)
    sending = asyncio.create_task(load.run())
    try:
        for service in SERVICES:
            victim: ServiceProcess = running[service]
            await progressed(load, by=15)
            victim.kill()
            # Reports keep coming while it is dead: the others' work piles up for it.
            await progressed(load, by=15)
            victim.start()
            await victim.wait_ready()
        await progressed(load, by=15)
        load.stop()
        await asyncio.wait_for(sending, timeout=120)
    finally:
        sending.cancel()
    assert all(running[s].starts == 2 for s in SERVICES)
    assert load.retries > 0, "intake's death went unnoticed: the kill did not happen under load"
    ledger = await settled(platform, load, within_s=120, ladder_levels=LADDER_LEVELS)
    breaches = [e for e in ledger.events if isinstance(e, SlaBreached)]
    assert len(breaches) >= len(ledger.reported_incidents()) * 2, "the policy's deadlines passed"
    await check(ledger, load, platform)


@pytest.mark.timeout(180)
async def test_nats_server_killed_and_restarted_during_load_loses_nothing(
    platform: Platform,
) -> None:
    running = {service: platform.add(service) for service in SERVICES}
    await platform.start_all()
    load = Load(
        [running["intake"].url], platform.api_key, report_bodies(shipped_city(), 300, seed=2)
    )
    sending = asyncio.create_task(load.run())
    try:
        await progressed(load, by=60)
        server = platform.nats.servers[0]
        server.kill()
        await progressed(load, by=10)  # intake refuses or fails while NATS is gone
        platform.nats.restart(server)
        for process in platform.processes:
            await process.wait_ready()
        await asyncio.wait_for(sending, timeout=120)
    finally:
        sending.cancel()
    assert load.retries > 0, "NATS' death went unnoticed: the kill did not happen under load"
    await check(await settled(platform, load), load, platform)


@pytest.mark.timeout(180)
async def test_two_replicas_of_every_service_have_no_duplicate_effects(
    platform: Platform,
) -> None:
    for service in SERVICES:
        platform.add(service)
        platform.add(service)
    await platform.start_all()
    intakes = [process.url for process in platform.of("intake")]
    bodies = report_bodies(shipped_city(), 300, seed=3)
    load = Load(intakes, platform.api_key, bodies, rate=40)
    await asyncio.wait_for(load.run(), timeout=120)
    # A retry of every report through the other replica: the same incident, nothing new.
    again = Load(list(reversed(intakes)), platform.api_key, bodies, rate=80)
    await asyncio.wait_for(again.run(), timeout=120)
    assert again.receipts == load.receipts
    await check(await settled(platform, load), load, platform)
