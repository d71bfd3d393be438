"""A command centre's SLA class order on a real nats-server: through intake's command to the
restarted clock and Open311's expected_datetime, and with a second-scale policy, only the new
clocks' warnings, breaches and ladder fire; the superseded ones' never do.

Policy here: standard accept 6 s / resolve 8 s, urgent accept 2 s / resolve 4 s, difficult
resolve 5 working days; a warning at 50 %; ladder level 1 at the breach, level 2 6 s later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from civicgrid.events.incident_events import (
    ClockStopReason,
    SlaClassOrdered,
    SlaClockStarted,
    SlaClockStopped,
)
from civicgrid.events.store import EventStore
from civicgrid.intake.app import compose as compose_intake
from civicgrid.intake.config import IntakeConfig
from civicgrid.intake.open311 import w3
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.sla.config import SlaConfig
from civicgrid.sla.domain.policy import SlaPolicyVersion
from tests.support.events.waiting import eventually
from tests.support.intake import (
    COMMAND_CENTRE,
    DEV_KEY,
    NEVER_MERGES,
    assign,
    intake_settings,
    keys,
    next_place,
    small_city,
)
from tests.support.sla import policy, rung
from tests.support.sla_nats import SlaWorld

from .conftest import StartSla

ORDERS_POLICY = policy(
    accept="6s",
    resolve="8s",
    urgent=("2s", "3s", "4s"),
    warnings=(0.5,),
    ladder=(
        rung("community-head", "0s", "community_head"),
        rung("department-head", "6s", "department_head"),
    ),
)
FIRED = ("sla_warning", "sla_breached", "escalated")


@pytest.fixture
def test_policy() -> SlaPolicyVersion:
    return ORDERS_POLICY


@pytest_asyncio.fixture
async def intake_http(nats_server: EmbeddedNats) -> AsyncIterator[httpx.AsyncClient]:
    app = compose_intake(
        intake_settings(nats_server.client_url, "intake-for-sla-orders"),
        catalogue=small_city(),
        keys=keys(),
        config=IntakeConfig(dev_api_key=None, api_keys_file=None, max_body_bytes=65536),
    )
    await app.service.start()
    transport = httpx.ASGITransport(app=app.service.http)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://intake", headers={"X-API-Key": DEV_KEY}
    ) as client:
        yield client
    await app.service.stop()


def clock_events(events: list, clock: str) -> list:  # type: ignore[type-arg]
    return [e for e in events if getattr(e, "clock", "") == clock]


async def test_ordering_difficult_through_intake_restarts_resolve_for_five_working_days(
    start_sla: StartSla,
    intake_http: httpx.AsyncClient,
    store: EventStore,
    world: SlaWorld,
    sla_config: SlaConfig,
) -> None:
    await start_sla()
    lon, lat = next_place()
    report = await intake_http.post(
        "/api/v1/reports",
        json={
            "channel": "grid_patrol",
            "worker_id": "w-9",
            "category": NEVER_MERGES.code,
            "description": "a leaning wall",
            "location": {"lon": lon, "lat": lat},
        },
    )
    assert report.status_code == 201, report.text
    incident_id = report.json()["incident_id"]
    await assign(store, incident_id)  # what routing writes: the matter's class, standard
    [first] = await world.wait_for(incident_id, "sla_clock_started:resolve")
    assert isinstance(first, SlaClockStarted) and first.sla_class == "standard"

    order = {
        "unit": COMMAND_CENTRE.model_dump(mode="json"),
        "sla_class": "difficult",
        "reason": "three departments involved",
    }
    key = {"Idempotency-Key": f"order-{incident_id}"}
    response = await intake_http.post(
        f"/api/v1/incidents/{incident_id}/reclassify", json=order, headers=key
    )
    assert response.status_code == 200, response.text
    [_, second] = await world.wait_for(incident_id, "sla_clock_started:resolve", 2)
    history = await world.history(incident_id)
    ordered = next(e for e in history if isinstance(e, SlaClassOrdered))
    assert isinstance(second, SlaClockStarted)
    assert second.causation_id == ordered.event_id and second.clock_version == 2
    assert second.sla_class == "difficult" and second.duration == "5wd"
    assert second.started_at == ordered.occurred_at
    assert second.policy_version == ORDERS_POLICY.policy_version
    five_working_days = ORDERS_POLICY.deadlines("difficult").resolve
    assert second.due_at == sla_config.calendar.due(ordered.occurred_at, five_working_days)
    # The legal rule: the period ends at 24:00 local of a working day, at least a week on.
    local_due = second.due_at.astimezone(sla_config.calendar.zone)
    assert (local_due.hour, local_due.minute) == (0, 0)
    assert second.due_at - ordered.occurred_at >= timedelta(days=5)
    [stop] = [e for e in clock_events(history, "resolve") if isinstance(e, SlaClockStopped)]
    assert (stop.reason, stop.clock_version) == (ClockStopReason.SUPERSEDED, 1)
    # accept has the same 6 s in both classes: untouched, still version 1.
    assert [
        e.clock_version for e in clock_events(history, "accept") if isinstance(e, SlaClockStarted)
    ] == [1]

    # Open311 and the native view follow the new clock.
    async def expected() -> str | None:
        got = await intake_http.get(f"/open311/v2/requests/{incident_id}.json")
        value = got.json()[0]["expected_datetime"]
        return value if value == w3(second.due_at) else None

    await eventually(expected, what="Open311 expected_datetime is the new resolve due")
    shown = (await intake_http.get(f"/api/v1/incidents/{incident_id}")).json()
    assert shown["state"]["sla_class"] == "difficult"
    assert datetime.fromisoformat(shown["state"]["expected_at"]) == second.due_at

    # The same order again under its key is already applied: nothing new, nothing restarted.
    orders_before = [e for e in await world.history(incident_id) if e.source == "intake"]
    again = await intake_http.post(
        f"/api/v1/incidents/{incident_id}/reclassify", json=order, headers=key
    )
    assert again.json()["outcome"] == "already_applied"
    assert [e for e in await world.history(incident_id) if e.source == "intake"] == orders_before
    starts = [e for e in await world.sla_events(incident_id) if e.event_type == "sla_clock_started"]
    assert len([e for e in starts if getattr(e, "clock", "") == "resolve"]) == 2


async def test_ordering_urgent_restarts_both_clocks_shorter_and_only_the_new_ones_fire(
    start_sla: StartSla, world: SlaWorld
) -> None:
    sla = await start_sla()
    script = world.incident()
    await world.append(script.reported())
    await world.append(script.assigned())
    await world.wait_for(script.incident_id, "sla_clock_started", 2)
    order = await world.append((await world.now(script)).ordered("urgent", "standard"))
    await world.wait_for(script.incident_id, "sla_clock_started", 4)
    restarted = {
        e.clock: e
        for e in await world.sla_events(script.incident_id)
        if isinstance(e, SlaClockStarted) and e.clock_version == 2
    }
    assert restarted["accept"].due_at == order.occurred_at + timedelta(seconds=2)
    assert restarted["resolve"].due_at == order.occurred_at + timedelta(seconds=4)
    # Level 2 of the new resolve clock fires 10 s after the order: later than every step of
    # the superseded clocks (their last, resolve's breach, was 8 s after the assignment).
    await world.wait_for(script.incident_id, "escalated:resolve", 2, within_s=30)

    async def settled() -> bool:
        return not await world.pending(script.incident_id)

    await eventually(settled, within_s=20, what="no schedule left for the incident")
    fired = [e for e in await world.sla_events(script.incident_id) if e.event_type in FIRED]
    assert fired, "the new clocks fired nothing"
    assert {getattr(e, "clock_version", None) for e in fired} == {2}
    assert all(e.occurred_at >= order.occurred_at for e in fired)
    for clock in ("accept", "resolve"):
        labels = [e.event_type for e in fired if getattr(e, "clock", "") == clock]
        assert labels == ["sla_warning", "sla_breached", "escalated", "escalated"], (clock, labels)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in sla.service.registry.collect()
        for sample in metric.samples
    }
    assert samples[("civicgrid_sla_class_orders_total", (("outcome", "restarted"),))] == 1
