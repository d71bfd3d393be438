"""Property: whatever arrives over HTTP or NATS, intake answers with a 4xx or a success,
never a 5xx or silence, and a refusal writes nothing to the stream."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from tests.support.intake import DEV_KEY, NEVER_MERGES, POTHOLE, stream_messages

pytestmark = pytest.mark.usefixtures("intake")

FUZZ = settings(
    # INTAKE_FUZZ_EXAMPLES=2000 for a longer hunt; the suite keeps to a few seconds.
    max_examples=int(os.environ.get("INTAKE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CHANNELS = [
    "hotline_12345",
    "police_110",
    "iot_sensor",
    "video_ai",
    "grid_patrol",
    "citizen_app",
    "open311",
    "fax",
]
COMMANDS = ["accept", "arrive", "return", "suspend", "resume", "extend", "resolve"]
COMMANDS += ["callback", "close", "reopen", "reassign", "merge", "explode"]
FIELDS = [
    "channel",
    "category",
    "description",
    "location",
    "address",
    "reporter",
    "media_urls",
    "external_ref",
    "reported_at",
    "attributes",
    "idempotency_key",
    "device_id",
    "reading",
    "camera_id",
    "detection_type",
    "confidence",
    "worker_id",
    "unit",
    "reason",
    "reason_code",
    "new_due_at",
    "satisfied",
    "rating",
    "incident_id",
    "into_incident_id",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["", "\x00", "\ud800", "citizen_app", POTHOLE.code, "2026-05-01T00:00:00Z"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
REQUIRED = ("channel", "category", "location")
near_valid_locations = st.fixed_dictionaries(
    {"lon": st.floats(120.3, 120.9) | json_values, "lat": st.floats(27.3, 27.8) | json_values}
)
reports = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(CHANNELS),
        "category": st.sampled_from([NEVER_MERGES.code, POTHOLE.code, "x"]),
        "location": near_valid_locations,
    },
    optional={name: json_values for name in FIELDS if name not in REQUIRED},
)
# Mostly well-formed reports with arbitrary text: these reach the decision and the store.
plausible_reports = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(["citizen_app", "open311", "grid_patrol"]),
        "category": st.just(NEVER_MERGES.code),
        "location": st.fixed_dictionaries(
            {"lon": st.floats(120.39, 120.81), "lat": st.floats(27.39, 27.71)}
        ),
    },
    optional={
        "worker_id": st.from_regex(r"[\x21-\x7e]{0,12}", fullmatch=True),
        "description": st.text(max_size=300),
        "address": st.text(max_size=80),
        "reporter": st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=70),
                "phone": st.from_regex(r"\+?[0-9 ()-]{0,34}", fullmatch=True),
                "email": st.emails() | st.text(max_size=20),
            },
        ),
        "external_ref": st.text(max_size=20),
        "reported_at": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
        "media_urls": st.lists(st.sampled_from(["https://a.example/1.jpg", "ftp://x"]), max_size=6),
        "attributes": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    },
)
bodies = (
    reports
    | plausible_reports
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=6)
    | json_values
)

incidents = st.sampled_from(["KNOWN", "NOPE", "a.b", "x" * 70])


def encoded(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


async def settled(js: JetStreamContext, before: int, status: int, text: str) -> None:
    assert status < 500, text
    if status >= 400:
        assert await stream_messages(js) == before, f"a {status} wrote to the stream: {text}"


@FUZZ
@given(body=bodies)
async def test_native_reports_never_5xx_and_refusals_write_nothing(
    http: httpx.AsyncClient, js: JetStreamContext, body: Any
) -> None:
    before = await stream_messages(js)
    response = await http.post(
        "/api/v1/reports", content=encoded(body), headers={"Content-Type": "application/json"}
    )
    event(f"status {response.status_code}")
    await settled(js, before, response.status_code, response.text)


@FUZZ
@given(
    command=st.sampled_from(COMMANDS),
    incident=st.sampled_from(["KNOWN", "NOPE", "a.b", "x" * 70]),
    body=bodies,
)
async def test_native_commands_never_5xx_and_refusals_write_nothing(
    http: httpx.AsyncClient, js: JetStreamContext, command: str, incident: str, body: Any
) -> None:
    before = await stream_messages(js)
    response = await http.post(
        f"/api/v1/incidents/{incident}/{command}",
        content=encoded(body),
        headers={"Content-Type": "application/json"},
    )
    await settled(js, before, response.status_code, response.text)


open311_fields = st.dictionaries(
    st.sampled_from(
        [
            "service_code",
            "lat",
            "long",
            "address_string",
            "description",
            "first_name",
            "phone",
            "email",
            "media_url",
            "token",
            "attribute[lane]",
            "attribute[depth_cm]",
            "attribute[lane][]",
            "jurisdiction_id",
        ]
    )
    | st.text(max_size=10),
    st.text(max_size=30)
    | st.sampled_from([POTHOLE.code, NEVER_MERGES.code, "27.5", "120.5", "left"]),
    max_size=8,
)


@FUZZ
@given(fields=open311_fields, raw=st.binary(max_size=64), use_raw=st.booleans())
async def test_open311_posts_never_5xx_and_refusals_write_nothing(
    http: httpx.AsyncClient, js: JetStreamContext, fields: dict[str, str], raw: bytes, use_raw: bool
) -> None:
    before = await stream_messages(js)
    content = (
        raw
        if use_raw
        else urlencode(
            {**fields, "api_key": DEV_KEY}, encoding="utf-8", errors="surrogatepass"
        ).encode()
    )
    response = await http.post(
        "/open311/v2/requests.json",
        content=content,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await settled(js, before, response.status_code, response.text)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["service_request_id", "service_code", "start_date", "end_date", "status"]),
        st.text(max_size=30) | st.sampled_from(["2026-01-01T00:00:00Z", "open,closed"]),
        max_size=4,
    )
)
async def test_open311_reads_never_5xx(http: httpx.AsyncClient, params: dict[str, str]) -> None:
    for path in ("/open311/v2/requests.json", "/open311/v2/servicerequestupdates.json"):
        response = await http.get(path, params=params)
        assert response.status_code < 500, response.text


@FUZZ
@given(
    subject=st.sampled_from(
        [f"intake.report.{c}" for c in CHANNELS[:-1]]
        + [f"intake.command.{c}" for c in COMMANDS[:-1]]
    ),
    body=bodies | st.binary(max_size=64),
)
async def test_nats_requests_always_get_a_reply_and_refusals_write_nothing(
    nc: NatsClient, js: JetStreamContext, subject: str, body: Any
) -> None:
    before = await stream_messages(js)
    payload = body if isinstance(body, bytes) else encoded(body)
    reply = await nc.request(subject, payload, timeout=5, headers={"X-API-Key": DEV_KEY})
    answer = json.loads(reply.data)
    assert isinstance(answer["ok"], bool)
    if not answer["ok"]:
        assert answer["error"]["status"] < 500, answer
        assert await stream_messages(js) == before
