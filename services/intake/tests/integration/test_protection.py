"""Keys, rights, rate limits, size limits, validation: clear 4xx, nothing written, and a
citizen's name and phone never in a log line or a metric."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from prometheus_client import generate_latest

from civicgrid.intake.app import IntakeApp
from tests.support.intake import (
    GRID,
    LIMITED_KEY,
    MAX_BODY_BYTES,
    NEVER_MERGES,
    OPEN311_KEY,
    OTHER_GRID,
    THROTTLED_KEY,
    next_place,
    stream_messages,
)


def app_report(channel: str = "citizen_app", **extra: Any) -> dict[str, Any]:
    lon, lat = next_place()
    body: dict[str, Any] = {
        "channel": channel,
        "category": NEVER_MERGES.code,
        "location": {"lon": lon, "lat": lat},
        "reporter": {"name": "王小明", "phone": "13711112222"},
    }
    body.update(extra)
    return body


async def test_no_key_or_an_unknown_key_is_401(http: httpx.AsyncClient) -> None:
    for headers in ({"X-API-Key": ""}, {"X-API-Key": "not-a-key"}):
        response = await http.post("/api/v1/reports", json=app_report(), headers=headers)
        assert response.status_code == 401
        assert response.json()["errors"][0]["field"] == "api_key"


async def test_a_key_may_use_only_its_channels_commands_and_reads(
    http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    limited = {"X-API-Key": LIMITED_KEY}
    before = await stream_messages(js)
    camera = app_report("video_ai", camera_id="c1", detection_type="fire", confidence=0.5)
    refused = await http.post("/api/v1/reports", json=camera, headers=limited)
    assert refused.status_code == 403 and "video_ai" in refused.text
    resolve = await http.post(
        "/api/v1/incidents/ANY/resolve",
        json={"unit": GRID.model_dump(), "resolution": "x"},
        headers=limited,
    )
    assert resolve.status_code == 403
    reading = await http.get("/api/v1/incidents/ANY", headers=limited)
    assert reading.status_code == 403
    assert await stream_messages(js) == before
    allowed = await http.post("/api/v1/reports", json=app_report(), headers=limited)
    assert allowed.status_code == 201


async def test_a_key_bound_to_a_unit_cannot_sign_for_another(
    http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    limited = {"X-API-Key": LIMITED_KEY}
    before = await stream_messages(js)
    other = await http.post(
        "/api/v1/incidents/ANY/accept", json={"unit": OTHER_GRID.model_dump()}, headers=limited
    )
    assert other.status_code == 403 and OTHER_GRID.id in other.text
    own = await http.post(
        "/api/v1/incidents/ANY/accept", json={"unit": GRID.model_dump()}, headers=limited
    )
    assert own.status_code == 404  # past the key's checks; there is no incident ANY
    assert await stream_messages(js) == before


async def test_open311_refuses_a_post_without_a_proper_key_with_403(
    http: httpx.AsyncClient,
) -> None:
    lon, lat = next_place()
    body = {"service_code": NEVER_MERGES.code, "lat": str(lat), "long": str(lon)}
    for key in ("", "wrong", LIMITED_KEY):
        response = await http.post(
            "/open311/v2/requests.json", data={**body, "api_key": key}, headers={"X-API-Key": ""}
        )
        assert response.status_code == 403, response.text
        assert response.json()[0]["code"] == 403
    ok = await http.post(
        "/open311/v2/requests.json",
        data=body,
        params={"api_key": OPEN311_KEY},
        headers={"X-API-Key": ""},
    )
    assert ok.status_code == 201, ok.text


async def test_a_key_over_its_rate_gets_429_with_retry_after(http: httpx.AsyncClient) -> None:
    throttled = {"X-API-Key": THROTTLED_KEY}
    statuses = [
        (await http.post("/api/v1/reports", json=app_report(), headers=throttled)).status_code
        for _ in range(3)
    ]
    assert statuses == [201, 201, 429]
    refused = await http.post("/api/v1/reports", json=app_report(), headers=throttled)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


async def test_a_body_over_the_limit_is_413_in_each_faces_format(
    http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    before = await stream_messages(js)
    huge = app_report(description="x" * (MAX_BODY_BYTES + 1))
    native = await http.post("/api/v1/reports", json=huge)
    assert native.status_code == 413 and native.json()["code"] == "too_large"
    form = await http.post(
        "/open311/v2/requests.json",
        content=b"description=" + b"y" * (MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 413 and form.json()[0]["code"] == 413

    async def chunks() -> Any:
        for _ in range(10):
            yield b"z" * (MAX_BODY_BYTES // 4)

    streamed = await http.post(
        "/api/v1/reports", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert await stream_messages(js) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"location": {"lon": 121.5, "lat": 27.5}}, "location"),
        ({"location": {"lon": "east", "lat": 27.5}}, "location.lon"),
        ({"category": "no.such-matter"}, "category"),
        ({"description": "x" * 4001}, "description"),
        ({"description": "bad \x00 byte"}, "description"),
        ({"description": "\ud800"}, "description"),
        ({"reporter": {"phone": "ring ring"}}, "reporter.phone"),
        ({"media_urls": ["javascript:alert(1)"]}, "media_urls.0"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_every_field_is_validated_with_a_clear_4xx(
    http: httpx.AsyncClient, js: JetStreamContext, change: dict[str, Any], field: str
) -> None:
    before = await stream_messages(js)
    body = app_report()
    body.update(change)
    # json.dumps escapes a lone surrogate as JSON allows ("\\ud800"); httpx would refuse it.
    response = await http.post(
        "/api/v1/reports",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    fields = [error["field"] for error in response.json()["errors"]]
    assert any(f is not None and f.endswith(field) for f in fields), fields
    assert await stream_messages(js) == before


async def test_malformed_json_and_bad_utf8_are_400(http: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json"}
    for content in (b"{not json", b'{"channel": "\xff"}'):
        response = await http.post("/api/v1/reports", content=content, headers=headers)
        assert response.status_code == 400, response.text
    form = await http.post(
        "/open311/v2/requests.json",
        content=b"service_code=%FF%FE",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 400


async def test_a_citizens_name_and_phone_appear_in_no_log_line_and_no_metric(
    http: httpx.AsyncClient, intake: IntakeApp, capfd: pytest.CaptureFixture[str]
) -> None:
    await http.post("/api/v1/reports", json=app_report())
    await http.post("/api/v1/reports", json=app_report(reporter={"name": "王小明", "phone": "x"}))
    await http.post("/api/v1/reports", json=app_report(description="\x00"))
    logged = capfd.readouterr()
    assert "report_taken" in logged.out, "the log is not being captured"
    metrics = generate_latest(intake.service.registry).decode()
    for secret in ("王小明", "13711112222"):
        assert secret not in logged.out + logged.err
        assert secret not in metrics


async def test_an_unexpected_failure_is_a_503_logged_by_its_type_only(
    http: httpx.AsyncClient, intake: IntakeApp, capfd: pytest.CaptureFixture[str]
) -> None:
    class BrokenStore:
        async def load(self, incident_id: str) -> Any:
            raise RuntimeError("the citizen 13711112222 said ...")

    real = intake.intake.store
    intake.intake.store = lambda: BrokenStore()  # type: ignore[assignment,return-value]
    try:
        native = await http.get("/api/v1/incidents/SOME-INCIDENT")
        open311 = await http.get("/open311/v2/requests/SOME-INCIDENT.json")
    finally:
        intake.intake.store = real
    assert native.status_code == 503 and native.json()["code"] == "unavailable"
    assert open311.status_code == 503 and open311.json()[0]["code"] == 503
    logged = capfd.readouterr()
    assert "RuntimeError" in logged.out
    assert "13711112222" not in logged.out + logged.err
