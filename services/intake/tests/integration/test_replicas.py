"""Two intake replicas on one NATS: each replays the stream into its own index; keyed retries,
duplicates and conflicting commands come out the same whichever replica takes them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from civicgrid.events.store import EventStore
from civicgrid.intake.app import IntakeApp, compose
from civicgrid.intake.catalogue import InMemoryCatalogue
from civicgrid.intake.config import IntakeConfig
from civicgrid.servicekit.natsserver import EmbeddedNats
from tests.support.events.waiting import eventually
from tests.support.intake import (
    DEV_KEY,
    GRID,
    assign,
    fresh_matter,
    intake_settings,
    keys,
    next_place,
    north_of,
)


@pytest_asyncio.fixture
async def second(
    intake: IntakeApp, nats_server: EmbeddedNats, catalogue: InMemoryCatalogue
) -> AsyncIterator[httpx.AsyncClient]:
    replica = compose(
        intake_settings(nats_server.client_url, instance="intake-replica-2"),
        catalogue=catalogue,
        keys=keys(),
        config=IntakeConfig(dev_api_key=None, api_keys_file=None, max_body_bytes=8192),
    )
    await replica.service.start()

    async def ready() -> bool:
        return not await replica.service.problems()

    await eventually(ready, what="second replica ready")
    assert replica.index.position >= intake.index.position - 50
    transport = httpx.ASGITransport(app=replica.service.http)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://replica-2", headers={"X-API-Key": DEV_KEY}
    ) as client:
        yield client
    await replica.service.stop()


def body(category: str, lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    return {
        "channel": "citizen_app",
        "category": category,
        "location": {"lon": lon, "lat": lat},
        **extra,
    }


async def test_a_retry_sent_to_the_other_replica_returns_the_same_incident(
    http: httpx.AsyncClient, second: httpx.AsyncClient, catalogue: InMemoryCatalogue
) -> None:
    report = body(fresh_matter(catalogue).code, *next_place(), external_ref="app-1001")
    first = await http.post("/api/v1/reports", json=report)
    again = await second.post("/api/v1/reports", json=report)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["incident_id"] == first.json()["incident_id"]


async def test_a_duplicate_sent_to_the_other_replica_joins_once_it_has_seen_the_first(
    http: httpx.AsyncClient, second: httpx.AsyncClient, catalogue: InMemoryCatalogue
) -> None:
    matter = fresh_matter(catalogue)
    lon, lat = next_place()
    first = (await http.post("/api/v1/reports", json=body(matter.code, lon, lat))).json()

    async def seen_by_second() -> bool:
        shown = await second.get("/open311/v2/requests.json", params={"service_code": matter.code})
        return len(shown.json()) == 1

    await eventually(seen_by_second, what="the second replica's index has the incident")
    joined = await second.post("/api/v1/reports", json=body(matter.code, *north_of(lon, lat, 30)))
    assert joined.json()["outcome"] == "merged"
    assert joined.json()["incident_id"] == first["incident_id"]


async def test_conflicting_commands_on_two_replicas_exactly_one_wins(
    http: httpx.AsyncClient,
    second: httpx.AsyncClient,
    catalogue: InMemoryCatalogue,
    store: EventStore,
) -> None:
    created = await http.post(
        "/api/v1/reports", json=body(fresh_matter(catalogue).code, *next_place())
    )
    incident_id = created.json()["incident_id"]
    await assign(store, incident_id)
    unit = {"unit": GRID.model_dump(mode="json")}
    responses = await asyncio.gather(
        http.post(f"/api/v1/incidents/{incident_id}/accept", json=unit),
        second.post(f"/api/v1/incidents/{incident_id}/accept", json=unit),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]


async def test_one_problem_reported_to_both_replicas_at_once_opens_one_incident(
    http: httpx.AsyncClient, second: httpx.AsyncClient, catalogue: InMemoryCatalogue
) -> None:
    """Ten trials of two near-identical reports at the same instant, one to each replica."""
    for _ in range(10):
        matter = fresh_matter(catalogue)
        lon, lat = next_place()
        responses = await asyncio.gather(
            http.post("/api/v1/reports", json=body(matter.code, lon, lat)),
            second.post("/api/v1/reports", json=body(matter.code, *north_of(lon, lat, 20))),
        )
        assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
        outcomes = sorted(r.json()["outcome"] for r in responses)
        assert outcomes == ["created", "merged"], outcomes
        assert responses[0].json()["incident_id"] == responses[1].json()["incident_id"]
