"""Every command through the native API: its happy path, and its 409 with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from civicgrid.events.store import EventStore
from tests.support.events.waiting import eventually
from tests.support.intake import (
    COMMAND_CENTRE,
    DEPARTMENT,
    GRID,
    NEVER_MERGES,
    OTHER_GRID,
    assign,
    next_place,
    start_clock,
    stream_messages,
)

LEAD = {"unit": GRID.model_dump()}
CENTRE = {"unit": COMMAND_CENTRE.model_dump()}


async def new_incident(http: httpx.AsyncClient) -> str:
    lon, lat = next_place()
    response = await http.post(
        "/api/v1/reports",
        json={
            "channel": "grid_patrol",
            "worker_id": "w-17",
            "category": NEVER_MERGES.code,
            "description": "found on patrol",
            "location": {"lon": lon, "lat": lat},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["incident_id"])


class Commands:
    def __init__(self, http: httpx.AsyncClient, js: JetStreamContext, incident_id: str) -> None:
        self.http, self.js, self.incident_id = http, js, incident_id

    async def ok(self, command: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = await self.http.post(
            f"/api/v1/incidents/{self.incident_id}/{command}", json=body, headers=headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def refused(self, command: str, body: dict[str, Any], because: str) -> None:
        before = await stream_messages(self.js)
        response = await self.http.post(
            f"/api/v1/incidents/{self.incident_id}/{command}", json=body
        )
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "rejected"
        assert because in response.json()["errors"][0]["reason"], response.text
        assert await stream_messages(self.js) == before, "a refused command wrote something"


@pytest.fixture
async def incident(http: httpx.AsyncClient, js: JetStreamContext) -> Commands:
    return Commands(http, js, await new_incident(http))


async def test_accept(incident: Commands, store: EventStore) -> None:
    await incident.refused("accept", LEAD, "not assigned yet")
    await assign(store, incident.incident_id)
    await incident.refused("accept", {"unit": OTHER_GRID.model_dump()}, "not the assigned lead")
    receipt = await incident.ok("accept", LEAD)
    assert receipt["outcome"] == "applied" and receipt["events"] == ["accepted"]
    await incident.refused("accept", LEAD, "already accepted")


async def test_arrive(incident: Commands, store: EventStore) -> None:
    await assign(store, incident.incident_id, on_site=True)
    await incident.refused("arrive", LEAD, "accepted before arrival")
    await incident.ok("accept", LEAD)
    await incident.refused("resolve", {**LEAD, "resolution": "done"}, "arrival on site")
    await incident.ok("arrive", {**LEAD, "location": {"lon": 120.5, "lat": 27.5}})
    await incident.refused("arrive", LEAD, "already recorded")


async def test_return_with_a_reason_code(incident: Commands, store: EventStore) -> None:
    await assign(store, incident.incident_id)
    body = {**LEAD, "reason_code": "wrong_jurisdiction", "note": "belongs to c02"}
    assert (await incident.ok("return", body))["events"] == ["returned"]
    await incident.refused("return", body, "only an assigned incident")


async def test_suspend_and_resume(incident: Commands, store: EventStore) -> None:
    await assign(store, incident.incident_id)
    await incident.refused("suspend", {**LEAD, "reason": "waiting"}, "only an accepted")
    await incident.ok("accept", LEAD)
    await incident.ok("suspend", {**LEAD, "reason": "waiting for the citizen"})
    await incident.refused("resolve", {**LEAD, "resolution": "done"}, "resume it first")
    await incident.refused("suspend", {**LEAD, "reason": "again"}, "already suspended")
    await incident.ok("resume", LEAD)
    await incident.refused("resume", LEAD, "not suspended")


async def test_extend_with_an_approval_and_a_new_deadline(
    incident: Commands, store: EventStore
) -> None:
    await assign(store, incident.incident_id)
    await incident.ok("accept", LEAD)
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    body = {
        "approved_by": DEPARTMENT.model_dump(),
        "clock": "resolve",
        "new_due_at": later,
        "reason": "waiting for parts",
    }
    await incident.refused("extend", body, "not running")
    await start_clock(store, incident.incident_id, "resolve")
    await incident.refused("extend", {**body, "approved_by": GRID.model_dump()}, "approved by")
    assert (await incident.ok("extend", body))["events"] == ["deadline_extended"]
    request = (await incident.http.get(f"/open311/v2/requests/{incident.incident_id}.json")).json()[
        0
    ]
    assert request["expected_datetime"] == datetime.fromisoformat(later).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


async def test_resolve_callback_close_and_reopen(incident: Commands, store: EventStore) -> None:
    await assign(store, incident.incident_id)
    await incident.refused("resolve", {**LEAD, "resolution": "done"}, "accepted before")
    await incident.ok("accept", LEAD)
    await incident.refused("callback", {"satisfied": True, "rating": 5}, "after resolution")
    await incident.ok("resolve", {**LEAD, "resolution": "cleared"})
    await incident.refused("resolve", {**LEAD, "resolution": "again"}, "already resolved")
    await incident.ok("callback", {"satisfied": True, "rating": 4, "comment": "quick"})
    await incident.refused("callback", {"satisfied": True, "rating": 5}, "already recorded")
    await incident.ok("close", {"reason": "done"})
    await incident.refused("close", {}, "closed already")
    assert (await incident.ok("reopen", {"reason": "it is back"}))["events"] == ["reopened"]
    await incident.refused("reopen", {"reason": "again"}, "only a resolved or closed")


async def test_a_dissatisfied_callback_reopens(incident: Commands, store: EventStore) -> None:
    await assign(store, incident.incident_id)
    await incident.ok("accept", LEAD)
    await incident.ok("resolve", {**LEAD, "resolution": "cleared"})
    receipt = await incident.ok("callback", {"satisfied": False, "rating": 1})
    assert receipt["events"] == ["callback_recorded", "reopened"]
    shown = (await incident.http.get(f"/api/v1/incidents/{incident.incident_id}")).json()
    assert shown["state"]["stage"] == "awaiting_assignment"
    assert [e["event_type"] for e in shown["events"]] == [
        "reported",
        "assigned",
        "accepted",
        "resolved",
        "callback_recorded",
        "reopened",
    ]
    assert shown["version"] == shown["events"][-1]["sequence"]


async def test_close_before_resolution_is_the_command_centres_call(incident: Commands) -> None:
    await incident.refused("close", {**LEAD, "reason": "nothing there"}, "only the command centre")
    await incident.ok("close", {**CENTRE, "reason": "false alarm from the camera"})


async def test_reassign(incident: Commands, store: EventStore) -> None:
    await assign(store, incident.incident_id)
    body = {"reason": "third return: final ruling", "to_unit": DEPARTMENT.model_dump()}
    await incident.refused("reassign", {**LEAD, **body}, "only the command centre")
    assert (await incident.ok("reassign", {**CENTRE, **body}))["events"] == ["reassigned"]
    await incident.refused("accept", LEAD, "not assigned yet")


async def test_merge_closes_one_incident_into_another(
    incident: Commands, http: httpx.AsyncClient, store: EventStore
) -> None:
    target = await new_incident(http)
    body = {**CENTRE, "into_incident_id": target}
    await incident.refused("merge", {**LEAD, "into_incident_id": target}, "only the command centre")
    await incident.refused("merge", {**CENTRE, "into_incident_id": incident.incident_id}, "itself")
    receipt = await incident.ok("merge", body)
    assert receipt["events"] == ["merged"]
    merged = (await store.load(target)).events[-1].event
    assert merged.event_type == "merged" and merged.from_incident_id == incident.incident_id  # type: ignore[attr-defined]

    async def source_closed() -> bool:
        last = (await store.load(incident.incident_id)).events[-1].event
        return last.event_type == "closed"

    await eventually(source_closed, what="the source closed by intake's reaction")
    await incident.refused("merge", body, "was merged into")
    await incident.refused("reopen", {"reason": "again"}, f"merged into {target}")
    source = (await http.get(f"/open311/v2/requests/{incident.incident_id}.json")).json()[0]
    assert source["status"] == "closed" and target in source["status_notes"]


async def test_a_command_on_an_unknown_incident_is_404(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/v1/incidents/NO-SUCH-INCIDENT/accept", json=LEAD)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


async def test_a_retried_command_is_applied_once(
    incident: Commands, store: EventStore, js: JetStreamContext
) -> None:
    await assign(store, incident.incident_id)
    first = await incident.ok("accept", LEAD, **{"Idempotency-Key": "app-77-accept"})
    before = await stream_messages(js)
    again = await incident.ok("accept", LEAD, **{"Idempotency-Key": "app-77-accept"})
    assert (first["outcome"], again["outcome"]) == ("applied", "already_applied")
    assert again["version"] == first["version"]
    assert await stream_messages(js) == before
    in_body = await incident.ok("resolve", {**LEAD, "resolution": "x", "command_id": "r-1"})
    repeat = await incident.ok("resolve", {**LEAD, "resolution": "x", "command_id": "r-1"})
    assert (in_body["outcome"], repeat["outcome"]) == ("applied", "already_applied")
