"""The read API on 8083 (clocks, running clocks, the calendar) and the auditor's repairs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio
from nats.js import JetStreamContext

from civicgrid.events import timers
from civicgrid.events.incident_events import SlaBreached, SlaClockStarted
from civicgrid.events.timers import TimerFiring
from civicgrid.sla.app import SlaApp
from tests.support.events.waiting import eventually
from tests.support.sla import GRID_B
from tests.support.sla_nats import SlaWorld, labels

from .conftest import StartSla


@pytest_asyncio.fixture
async def sla(start_sla: StartSla) -> SlaApp:
    # The auditor's loop stays idle (long interval): the tests run its sweep themselves.
    return await start_sla(audit_grace_s=0.5, audit_interval_s=3600)


@pytest_asyncio.fixture
async def api(sla: SlaApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sla.service.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://sla") as client:
        yield client


async def test_the_calendar_answers_the_design_example(api: httpx.AsyncClient) -> None:
    response = await api.get(
        "/api/v1/calendar/due", params={"start": "2026-09-24T10:00:00+08:00", "duration": "5wd"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["due_at"] == "2026-10-09T16:00:00Z"
    assert body["due_at_local"] == "2026-10-10T00:00:00+08:00"
    days = await api.get(
        "/api/v1/calendar/working-days", params={"from": "2026-09-24", "to": "2026-10-10"}
    )
    assert days.json()["working_days"] == [
        "2026-09-24",
        "2026-09-28",
        "2026-09-29",
        "2026-09-30",
        "2026-10-08",
        "2026-10-09",
        "2026-10-10",
    ]


async def test_the_calendar_refuses_what_it_cannot_answer(api: httpx.AsyncClient) -> None:
    async def get(path: str, **params: str) -> tuple[int, dict[str, str]]:
        response = await api.get(f"/api/v1/calendar/{path}", params=params)
        return response.status_code, response.json()

    status, body = await get("due", start="2026-09-24T10:00:00+08:00", duration="5 days")
    assert (status, body["error"]) == (400, "bad_request") and "not a duration" in body["detail"]
    status, body = await get("due", start="2026-09-24T10:00:00", duration="5wd")
    assert status == 400 and "offset" in body["detail"]
    status, body = await get("due", start="yesterday", duration="5wd")
    assert status == 400 and "start" in body["detail"]
    status, body = await get("due", start="2099-03-01T10:00:00+08:00", duration="1wd")
    assert (status, body["error"]) == (422, "calendar_not_covered") and "2099" in body["detail"]
    status, body = await get("working-days", **{"from": "2026-10-10", "to": "2026-10-01"})
    assert status == 400
    status, body = await get("working-days", **{"from": "2026-10-10"})
    assert (status, body["error"]) == (400, "bad_request") and "to" in body["detail"]


async def test_an_incident_s_clocks_and_the_running_clocks_filters(
    api: httpx.AsyncClient, world: SlaWorld
) -> None:
    script, other = world.incident(), world.incident()
    for s, unit in ((script, None), (other, GRID_B)):
        await world.append(s.reported())
        await world.append(s.assigned(unit) if unit else s.assigned())
    [_, resolve] = await world.wait_for(script.incident_id, "sla_clock_started", 2)
    await world.wait_for(other.incident_id, "sla_clock_started", 2)
    assert isinstance(resolve, SlaClockStarted)
    response = await api.get(f"/api/v1/incidents/{script.incident_id}/clocks")
    assert response.status_code == 200
    clocks = {c["clock"]: c for c in response.json()["clocks"]}
    assert set(clocks) == {"accept", "resolve"}
    assert clocks["resolve"]["state"] == "running"
    assert datetime.fromisoformat(clocks["resolve"]["due_at"]) == resolve.due_at
    assert clocks["resolve"]["community_id"] == "c01"

    async def listed() -> list[dict[str, str]] | None:
        page = await api.get("/api/v1/clocks", params={"unit": GRID_B.id, "clock": "resolve"})
        found = [c for c in page.json()["clocks"] if c["incident_id"] == other.incident_id]
        return found or None

    [row] = await eventually(listed, what="the other incident's resolve clock listed")
    assert row["unit"]["id"] == GRID_B.id
    page = await api.get("/api/v1/clocks", params={"unit": GRID_B.id})
    assert {c["unit"]["id"] for c in page.json()["clocks"]} == {GRID_B.id}

    async def overdue() -> bool:
        page = await api.get("/api/v1/clocks", params={"overdue": "true", "clock": "accept"})
        return script.incident_id in {c["incident_id"] for c in page.json()["clocks"]}

    await eventually(overdue, what="the accept clock listed as overdue")
    missing = await api.get("/api/v1/incidents/01NOSUCHINCIDENT000000000/clocks")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    bad = await api.get("/api/v1/incidents/not.valid/clocks")
    assert bad.status_code == 400


async def test_the_auditor_fires_a_lost_deadline_once_and_cancels_an_orphan_schedule(
    sla: SlaApp, world: SlaWorld, js: JetStreamContext, api: httpx.AsyncClient
) -> None:
    lost, closed = world.incident(), world.incident()
    for script in (lost, closed):
        await world.append(script.reported())
        await world.append(script.assigned())
        await world.append(script.accepted())
    started = await world.wait_for(lost.incident_id, "sla_clock_started:resolve")
    await world.wait_for(lost.incident_id, "sla_clock_stopped:accept")
    await eventually(lambda: world.pending(lost.incident_id), what="timers armed")
    # A timer lost in the broker: purge every schedule of the incident behind the service.
    for stage in ("warning", "breach", "escalation"):
        await timers.cancel(js, lost.incident_id, "resolve", stage)
    resolve = started[0]
    assert isinstance(resolve, SlaClockStarted)
    # A stray schedule for a clock that has stopped.
    await world.append((await world.now(closed)).closed())
    await world.wait_for(closed.incident_id, "sla_clock_stopped:resolve")

    async def view_updated() -> bool:
        return sla.view.clocks_of(closed.incident_id) is None

    await eventually(view_updated, what="the view saw the close")

    async def schedules_cancelled() -> bool:
        return not await world.pending(closed.incident_id)

    # The close's own cancelling comes after its events are stored, and a firing of the
    # stopped clock still on its way cancels that clock's later stages: a stray on them could
    # be purged by the service before any sweep. So: after the close's cancelling, and for a
    # clock the incident never had (standard class: no arrive clock).
    await eventually(schedules_cancelled, what="the close's schedules cancelled")
    stray = TimerFiring(
        incident_id=closed.incident_id,
        clock="arrive",
        stage="breach",
        clock_version=1,
        fire_at=datetime.now(UTC) + timedelta(hours=1),
    )
    await timers.arm(js, stray)

    async def past_due() -> bool:
        return datetime.now(UTC) > resolve.due_at + timedelta(seconds=1)

    await eventually(past_due, within_s=15, what="past the lost deadline")
    assert "sla_breached:resolve" not in labels(await world.sla_events(lost.incident_id))
    report = await sla.auditor.sweep()
    # The sweep covers the whole stream, which this session shares with other tests' incidents
    # (their services stopped with deadlines pending): this test's own repairs are asserted on
    # its incidents below; the report must at least count them.
    assert report.repaired.get("missed_breach", 0) >= 1, report
    assert report.repaired.get("orphan_schedule", 0) >= 1, report
    [breach] = await world.wait_for(lost.incident_id, "sla_breached:resolve")
    assert isinstance(breach, SlaBreached) and breach.due_at == resolve.due_at
    assert stray.schedule_subject not in await world.pending(closed.incident_id)
    # Repaired once: the ladder is armed again from the breach on, and a second sweep finds
    # the breach recorded.
    again = await sla.auditor.sweep()
    assert again.repaired.get("missed_breach") is None
    await world.wait_for(lost.incident_id, "escalated:resolve", 2)
    assert labels(await world.sla_events(lost.incident_id)).count("sla_breached:resolve") == 1
    audit = (await api.get("/api/v1/audit")).json()
    assert audit["failures"] == []
