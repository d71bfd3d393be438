"""Open311 GeoReport v2 against the real nats-server: services, the POST-to-GET round trip,
the list filters and defaults, tokens, FixMyStreet's updates, and the spec's error format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from nats.js import JetStreamContext

from civicgrid.events.store import EventStore
from civicgrid.intake.app import IntakeApp
from civicgrid.intake.catalogue import InMemoryCatalogue
from tests.support.events.waiting import eventually
from tests.support.intake import (
    DEV_KEY,
    GRID,
    NEVER_MERGES,
    POTHOLE,
    assign,
    fresh_matter,
    next_place,
    start_clock,
    stream_messages,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def form(service_code: str, **fields: str) -> dict[str, str]:
    lon, lat = next_place()
    body = {
        "api_key": DEV_KEY,
        "service_code": service_code,
        "lat": str(lat),
        "long": str(lon),
        "description": "A large sinkhole",
        "first_name": "Wei",
        "last_name": "Zhang",
        "phone": "13800000000",
        "email": "zhang@example.cn",
    }
    body.update(fields)
    return body


async def post_form(http: httpx.AsyncClient, body: dict[str, str]) -> httpx.Response:
    # The spec's own example: a form, api_key in it, no header.
    return await http.post("/open311/v2/requests.json", data=body, headers={"X-API-Key": ""})


async def test_the_service_list_is_the_matter_list(http: httpx.AsyncClient) -> None:
    response = await http.get("/open311/v2/services.json", headers={"X-API-Key": ""})
    assert response.status_code == 200
    services = {s["service_code"]: s for s in response.json()}
    assert services[POTHOLE.code] == {
        "service_code": POTHOLE.code,
        "service_name": "道路坑洼",
        "description": "Pothole",
        "metadata": True,
        "type": "realtime",
        "keywords": "坑, 路面",
        "group": "道路交通",
    }
    assert services[NEVER_MERGES.code]["metadata"] is False


async def test_a_service_definition_lists_its_attributes(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/open311/v2/services/{POTHOLE.code}.json")
    assert response.status_code == 200
    lane = response.json()["attributes"][1]
    assert lane["code"] == "lane" and lane["required"] is True and lane["order"] == 2
    assert lane["values"] == [{"key": "left", "name": "左"}, {"key": "right", "name": "右"}]
    missing = await http.get("/open311/v2/services/roads.nothing.json")
    assert missing.status_code == 404
    assert missing.json()[0]["code"] == 404 and "not found" in missing.json()[0]["description"]


async def test_a_form_post_round_trips_to_a_get_and_shows_the_assignee_once_routed(
    http: httpx.AsyncClient, store: EventStore
) -> None:
    body = form(POTHOLE.code, **{"attribute[lane]": "left", "attribute[depth_cm]": "15"})
    created = await post_form(http, body)
    assert created.status_code == 201, created.text
    [receipt] = created.json()
    incident_id = receipt["service_request_id"]

    raw = await http.get(f"/open311/v2/requests/{incident_id}.json")
    assert raw.status_code == 200
    [request] = raw.json()
    assert request["status"] == "open"
    assert request["service_code"] == POTHOLE.code and request["service_name"] == "道路坑洼"
    assert request["agency_responsible"] is None and request["expected_datetime"] is None
    assert (request["lat"], request["long"]) == (float(body["lat"]), float(body["long"]))
    assert request["requested_datetime"].endswith("Z")
    assert "13800000000" not in raw.text and "Zhang" not in raw.text

    stored = (await store.load(incident_id)).events[0].event
    assert stored.report.reporter.phone == "13800000000"  # type: ignore[attr-defined]
    assert stored.report.attributes == {"lane": "left", "depth_cm": 15}  # type: ignore[attr-defined]

    await assign(store, incident_id, GRID)
    due = await start_clock(store, incident_id, "resolve")
    routed = (await http.get(f"/open311/v2/requests/{incident_id}.json")).json()[0]
    assert routed["agency_responsible"] == GRID.name
    assert routed["expected_datetime"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert routed["status_notes"] == "assigned"


async def test_a_json_post_is_accepted_too(http: httpx.AsyncClient) -> None:
    body: dict[str, Any] = form(NEVER_MERGES.code)
    body["attribute"] = {}
    response = await http.post("/open311/v2/requests.json", json=body)
    assert response.status_code == 201, response.text


async def test_the_list_filters_by_code_status_and_dates_newest_first(
    http: httpx.AsyncClient, catalogue: InMemoryCatalogue, store: EventStore, intake: IntakeApp
) -> None:
    matter = fresh_matter(catalogue)
    ids = [
        (await post_form(http, form(matter.code))).json()[0]["service_request_id"] for _ in range(3)
    ]
    await assign(store, ids[0])
    for command in ("accept", "resolve"):
        body = (
            {"unit": GRID.model_dump(), "resolution": "filled"}
            if command == "resolve"
            else {"unit": GRID.model_dump()}
        )
        ok = await http.post(f"/api/v1/incidents/{ids[0]}/{command}", json=body)
        assert ok.status_code == 200, ok.text

    async def listed() -> list[dict[str, Any]] | None:
        response = await http.get("/open311/v2/requests.json", params={"service_code": matter.code})
        found = response.json()
        return found if len(found) == 3 else None

    everything = await eventually(listed, what="three requests listed")
    assert [r["service_request_id"] for r in everything] == list(reversed(ids))
    closed = await http.get(
        "/open311/v2/requests.json", params={"service_code": matter.code, "status": "closed"}
    )
    assert [r["service_request_id"] for r in closed.json()] == [ids[0]]
    future = datetime.now(UTC) + timedelta(days=1)
    later = await http.get(
        "/open311/v2/requests.json",
        params={"service_code": matter.code, "start_date": future.strftime("%Y-%m-%dT%H:%M:%SZ")},
    )
    assert later.json() == []
    by_id = await http.get(
        "/open311/v2/requests.json",
        params={"service_request_id": f"{ids[1]},{ids[2]}", "status": "closed"},
    )
    assert {r["service_request_id"] for r in by_id.json()} == {ids[1], ids[2]}


async def test_bad_list_arguments_get_the_spec_error_format(http: httpx.AsyncClient) -> None:
    for params in (
        {"start_date": "yesterday"},
        {"start_date": "2026-01-01T00:00:00"},
        {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
        {"status": "pending"},
    ):
        response = await http.get("/open311/v2/requests.json", params=params)
        assert response.status_code == 400, params
        [error] = response.json()
        assert error["code"] == 400 and error["description"]
    missing = await http.get("/open311/v2/requests/NO-SUCH-REQUEST.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404


async def test_a_post_without_what_the_spec_requires_is_refused(
    http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    before = await stream_messages(js)
    cases = [
        ({**form(POTHOLE.code), "service_code": ""}, 400, "service_code"),
        (form("roads.no-such-thing"), 404, "service_code"),
        (
            {**form(NEVER_MERGES.code), "lat": "", "long": "", "address_string": "1 Main St"},
            400,
            "gazetteer",
        ),
        ({**form(NEVER_MERGES.code), "long": ""}, 400, "long: is required"),
        (form(NEVER_MERGES.code, lat="95"), 400, "lat"),
        (form(NEVER_MERGES.code, lat="27.0", long="120.0"), 400, "outside the city"),
        (form(POTHOLE.code), 400, "lane"),
        (form(NEVER_MERGES.code, api_key=""), 403, "API key"),
        (form(NEVER_MERGES.code, api_key="wrong"), 403, "unknown API key"),
        (form(NEVER_MERGES.code, phone="call me"), 400, "phone"),
    ]
    for body, status, words in cases:
        response = await post_form(http, body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()[0]["description"], response.text
    assert await stream_messages(js) == before


async def test_a_retried_post_with_its_token_returns_the_same_request(
    http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    body = form(NEVER_MERGES.code, token="fms-report-88841")
    first = await post_form(http, body)
    before = await stream_messages(js)
    again = await post_form(http, body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()[0]["service_request_id"] == first.json()[0]["service_request_id"]
    assert await stream_messages(js) == before
    token = await http.get("/open311/v2/tokens/fms-report-88841.json")
    assert token.json() == [
        {"service_request_id": first.json()[0]["service_request_id"], "token": "fms-report-88841"}
    ]
    unknown = await http.get("/open311/v2/tokens/never-sent.json")
    assert unknown.status_code == 404


async def test_updates_follow_the_incidents_life_in_fixmystreet_statuses(
    http: httpx.AsyncClient, store: EventStore
) -> None:
    incident_id = (await post_form(http, form(NEVER_MERGES.code))).json()[0]["service_request_id"]
    await assign(store, incident_id)
    unit = {"unit": GRID.model_dump()}
    for command, extra in (
        ("accept", {}),
        ("resolve", {"resolution": "filled with asphalt"}),
        ("callback", {"satisfied": True, "rating": 5}),
        ("close", {}),
    ):
        body = {**unit, **extra} if command != "callback" and command != "close" else extra
        response = await http.post(f"/api/v1/incidents/{incident_id}/{command}", json=body)
        assert response.status_code == 200, response.text

    async def updates() -> list[tuple[str, str]] | None:
        response = await http.get("/open311/v2/servicerequestupdates.json")
        mine = [
            (u["status"], u["description"])
            for u in response.json()
            if u["service_request_id"] == incident_id
        ]
        return mine if len(mine) == 6 else None

    statuses = [status for status, _ in await eventually(updates, what="six updates")]
    assert statuses == ["open", "action_scheduled", "in_progress", "fixed", "fixed", "closed"]
    request = (await http.get(f"/open311/v2/requests/{incident_id}.json")).json()[0]
    assert request["status"] == "closed"
