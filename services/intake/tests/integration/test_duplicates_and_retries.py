"""并单 within a matter's radius and window (and not just outside either), and idempotent
reports: each kind of key makes a retry return the same incident and write nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from nats.js import JetStreamContext

from civicgrid.events.store import EventStore
from civicgrid.intake.app import IntakeApp
from civicgrid.intake.catalogue import InMemoryCatalogue, Matter
from civicgrid.intake.handlers import Intake
from civicgrid.intake.index import IncidentIndex
from civicgrid.intake.reports import CitizenAppReport
from tests.support.events.waiting import eventually
from tests.support.intake import (
    NEVER_MERGES,
    fresh_matter,
    next_place,
    north_of,
    stream_messages,
)


def citizen_report(matter: Matter, lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    return {
        "channel": "citizen_app",
        "category": matter.code,
        "description": "same problem",
        "location": {"lon": lon, "lat": lat},
        "reporter": {"name": "李四", "phone": "13900000000"},
        **extra,
    }


async def report(http: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    response = await http.post("/api/v1/reports", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response


async def test_a_report_within_the_radius_joins_the_open_incident(
    http: httpx.AsyncClient, catalogue: InMemoryCatalogue, store: EventStore
) -> None:
    matter = fresh_matter(catalogue, duplicate_radius_m=100)
    lon, lat = next_place()
    first = await report(http, citizen_report(matter, lon, lat))
    second = await report(http, citizen_report(matter, *north_of(lon, lat, 95)))
    assert first.status_code == 201 and second.status_code == 200
    joined = second.json()
    assert joined["outcome"] == "merged"
    assert joined["incident_id"] == first.json()["incident_id"]
    assert 94 < joined["distance_m"] < 96
    history = await store.load(joined["incident_id"])
    assert [e.event_type for e in history] == ["reported", "merged"]


async def test_a_report_just_outside_the_radius_opens_its_own_incident(
    http: httpx.AsyncClient, catalogue: InMemoryCatalogue
) -> None:
    matter = fresh_matter(catalogue, duplicate_radius_m=100)
    lon, lat = next_place()
    first = await report(http, citizen_report(matter, lon, lat))
    second = await report(http, citizen_report(matter, *north_of(lon, lat, 105)))
    assert second.status_code == 201
    assert second.json()["incident_id"] != first.json()["incident_id"]


async def test_the_window_decides_too(
    http: httpx.AsyncClient, catalogue: InMemoryCatalogue
) -> None:
    matter = fresh_matter(catalogue, duplicate_window_minutes=60)
    now = datetime.now(UTC)
    inside_lon, inside_lat = next_place()
    early = now - timedelta(minutes=58)
    first = await report(
        http, citizen_report(matter, inside_lon, inside_lat, reported_at=early.isoformat())
    )
    within = await report(http, citizen_report(matter, inside_lon, inside_lat))
    assert within.json()["outcome"] == "merged"
    assert within.json()["incident_id"] == first.json()["incident_id"]

    outside_lon, outside_lat = next_place()
    too_early = now - timedelta(minutes=62)
    old = await report(
        http, citizen_report(matter, outside_lon, outside_lat, reported_at=too_early.isoformat())
    )
    later = await report(http, citizen_report(matter, outside_lon, outside_lat))
    assert later.json()["outcome"] == "created"
    assert later.json()["incident_id"] != old.json()["incident_id"]


async def test_another_category_or_a_closed_incident_is_not_a_duplicate(
    http: httpx.AsyncClient, catalogue: InMemoryCatalogue
) -> None:
    matter, other = fresh_matter(catalogue), fresh_matter(catalogue)
    lon, lat = next_place()
    first = (await report(http, citizen_report(matter, lon, lat))).json()["incident_id"]
    assert (await report(http, citizen_report(other, lon, lat))).json()["outcome"] == "created"
    closed = await http.post(
        f"/api/v1/incidents/{first}/close",
        json={"unit": {"kind": "command_centre", "id": "cc"}, "reason": "duplicate call"},
    )
    assert closed.status_code == 200
    assert (await report(http, citizen_report(matter, lon, lat))).json()["outcome"] == "created"


async def test_an_incident_merged_by_the_command_centre_counts_as_a_duplicate(
    http: httpx.AsyncClient, catalogue: InMemoryCatalogue
) -> None:
    matter = fresh_matter(catalogue)
    first = (await report(http, citizen_report(matter, *next_place()))).json()["incident_id"]
    second = (await report(http, citizen_report(matter, *next_place()))).json()["incident_id"]
    merged = await http.post(
        f"/api/v1/incidents/{second}/merge",
        json={"unit": {"kind": "command_centre", "id": "cc"}, "into_incident_id": first},
    )
    assert merged.status_code == 200, merged.text

    async def closed_by_the_reaction() -> dict[str, Any] | None:
        shown = (await http.get(f"/open311/v2/requests/{second}.json")).json()[0]
        return shown if shown["status"] == "closed" else None

    request = await eventually(closed_by_the_reaction, what="the merged source closed")
    assert request["status_notes"] == f"Duplicate request: merged into {first}."
    target = (await http.get(f"/api/v1/incidents/{first}")).json()["state"]
    assert target["merged_reports"] == 1


async def retried_once(
    http: httpx.AsyncClient, js: JetStreamContext, body: dict[str, Any], **headers: str
) -> None:
    first = await report(http, body, **headers)
    before = await stream_messages(js)
    again = await report(http, body, **headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["outcome"] == "retried"
    assert again.json()["incident_id"] == first.json()["incident_id"]
    assert await stream_messages(js) == before


async def test_a_report_retried_with_an_idempotency_key_header_is_stored_once(
    http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    body = citizen_report(NEVER_MERGES, *next_place())
    await retried_once(http, js, body, **{"Idempotency-Key": "app-report-5521"})


async def test_a_report_retried_with_the_same_channel_reference_is_stored_once(
    http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    lon, lat = next_place()
    body = {
        "channel": "hotline_12345",
        "external_ref": "12345-20260501-0042",
        "category": NEVER_MERGES.code,
        "location": {"lon": lon, "lat": lat},
    }
    await retried_once(http, js, body)


async def test_a_report_retried_with_its_idempotency_key_field_is_stored_once(
    http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    body = {
        "channel": "video_ai",
        "camera_id": "cam-0931",
        "detection_type": "garbage_overflow",
        "confidence": 0.91,
        "snapshot_url": "https://video.example.cn/snap/1.jpg",
        "category": NEVER_MERGES.code,
        "location": dict(zip(("lon", "lat"), next_place(), strict=True)),
        "idempotency_key": "cam-0931-evt-77",
    }
    await retried_once(http, js, body)


async def test_a_retried_duplicate_is_not_merged_twice(
    http: httpx.AsyncClient, js: JetStreamContext, catalogue: InMemoryCatalogue
) -> None:
    matter = fresh_matter(catalogue)
    lon, lat = next_place()
    await report(http, citizen_report(matter, lon, lat))
    body = citizen_report(matter, lon, lat, external_ref="app-9")
    first = await report(http, body)
    before = await stream_messages(js)
    again = await report(http, body)
    assert first.json()["outcome"] == "merged" and again.json()["outcome"] == "retried"
    assert await stream_messages(js) == before


async def test_another_replica_recognises_a_retry_from_the_store_alone(
    intake: IntakeApp, http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    """A replica whose index has not seen the original still answers with the same id:
    a keyed report's incident id is derived from its key."""
    lon, lat = next_place()
    body = citizen_report(NEVER_MERGES, lon, lat, external_ref="app-4242")
    first = (await report(http, body)).json()["incident_id"]
    forgetful = Intake(
        intake.intake.store,
        IncidentIndex(),
        intake.intake.catalogue,
        intake.intake.metrics,
        intake.intake.claims,
    )
    before = await stream_messages(js)
    outcome = await forgetful.report(
        CitizenAppReport.model_validate(body), system="dev", key="ref:citizen_app:app-4242"
    )
    assert (outcome.incident_id, outcome.outcome) == (first, "retried")
    assert await stream_messages(js) == before
