"""Defects found driving the platform from outside (issue 7), each kept from coming back."""

from __future__ import annotations

import httpx
from nats.js import JetStreamContext

from civicgrid.events.store import EventStore
from tests.support.events.waiting import eventually
from tests.support.intake import COMMAND_CENTRE, DEPARTMENT, GRID, assign, stream_messages

from .test_commands import CENTRE, LEAD, Commands, new_incident
from .test_commands import incident as incident  # the fixture


async def test_a_reused_key_for_another_command_is_refused_not_dropped(
    incident: Commands, store: EventStore, js: JetStreamContext
) -> None:
    await assign(store, incident.incident_id)
    key = {"Idempotency-Key": "app-9-reused"}
    await incident.ok("accept", LEAD, **key)
    before = await stream_messages(js)
    response = await incident.http.post(
        f"/api/v1/incidents/{incident.incident_id}/return",
        json={**LEAD, "reason_code": "wrong_jurisdiction"},
        headers=key,
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "idempotency_key_reused"
    assert "different" in response.json()["errors"][0]["reason"]
    assert await stream_messages(js) == before


async def test_a_reused_key_with_another_body_is_refused(
    incident: Commands, store: EventStore, js: JetStreamContext
) -> None:
    await assign(store, incident.incident_id)
    await incident.ok("accept", LEAD)
    key = {"Idempotency-Key": "app-9-resolve"}
    await incident.ok("resolve", {**LEAD, "resolution": "cleared"}, **key)
    response = await incident.http.post(
        f"/api/v1/incidents/{incident.incident_id}/resolve",
        json={**LEAD, "resolution": "something else"},
        headers=key,
    )
    assert response.status_code == 422, response.text
    same = await incident.ok("resolve", {**LEAD, "resolution": "cleared"}, **key)
    assert same["outcome"] == "already_applied"


async def test_an_identical_unkeyed_reassign_writes_once(
    incident: Commands, store: EventStore
) -> None:
    await assign(store, incident.incident_id)
    body = {**CENTRE, "reason": "wrong unit", "to_unit": DEPARTMENT.model_dump()}
    first = await incident.http.post(
        f"/api/v1/incidents/{incident.incident_id}/reassign", json=body
    )
    second = await incident.http.post(
        f"/api/v1/incidents/{incident.incident_id}/reassign", json=body
    )
    assert first.status_code == 200, first.text
    assert second.status_code == 409, second.text
    assert "already pending" in second.json()["errors"][0]["reason"]
    types = [s.event.event_type for s in (await store.load(incident.incident_id)).events]
    assert types.count("reassigned") == 1


async def test_a_reassign_to_the_unit_already_leading_is_refused(
    incident: Commands, store: EventStore
) -> None:
    await assign(store, incident.incident_id)
    body = {**CENTRE, "reason": "make sure", "to_unit": GRID.model_dump()}
    response = await incident.http.post(
        f"/api/v1/incidents/{incident.incident_id}/reassign", json=body
    )
    assert response.status_code == 409, response.text
    assert "already assigned" in response.json()["errors"][0]["reason"]


async def test_a_merge_closes_its_source_as_a_reaction_once(
    incident: Commands, http: httpx.AsyncClient, store: EventStore
) -> None:
    target = await new_incident(http)
    body = {**CENTRE, "into_incident_id": target}
    receipt = await incident.ok("merge", body)
    assert receipt["events"] == ["merged"]

    async def source_closed() -> bool:
        history = await store.load(incident.incident_id)
        return history.events[-1].event.event_type == "closed"

    await eventually(source_closed, what="the merged incident closed by the reaction")
    again = await incident.http.post(f"/api/v1/incidents/{incident.incident_id}/merge", json=body)
    assert again.status_code == 409, again.text
    target_types = [s.event.event_type for s in (await store.load(target)).events]
    assert target_types.count("merged") == 1
    source_types = [s.event.event_type for s in (await store.load(incident.incident_id)).events]
    assert source_types.count("closed") == 1
    assert COMMAND_CENTRE.kind.value == "command_centre"
