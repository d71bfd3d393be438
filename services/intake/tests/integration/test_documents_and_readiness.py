"""The published surface (OpenAPI, AsyncAPI with real payload schemas) and readiness."""

from __future__ import annotations

import httpx
from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry

from civicgrid.events.projector import Projector, ProjectorMetrics
from civicgrid.intake.app import IntakeApp, asyncapi_schema
from civicgrid.intake.index import IncidentIndex
from tests.support.events.waiting import eventually

CHANNELS = ("hotline_12345", "police_110", "iot_sensor", "video_ai", "grid_patrol", "citizen_app")
COMMANDS = (
    "accept",
    "arrive",
    "return",
    "suspend",
    "resume",
    "extend",
    "resolve",
    "callback",
    "close",
    "reopen",
    "reassign",
    "merge",
    "reclassify",
)


def test_the_asyncapi_document_has_a_typed_payload_and_reply_for_every_subject() -> None:
    document = asyncapi_schema()
    addresses = {channel["address"] for channel in document["channels"].values()}
    for channel in (*CHANNELS, "open311"):
        assert f"intake.report.{channel}" in addresses
    for command in COMMANDS:
        assert f"intake.command.{command}" in addresses
    schemas = document["components"]["schemas"]
    sensor = schemas["SensorAlarmReport"]
    assert {"device_id", "reading", "category", "location"} <= set(sensor["required"])
    assert set(schemas["VideoDetectionReport"]["required"]) >= {"camera_id", "confidence"}
    assert "incident_id" in schemas["AcceptRequest"]["required"]
    assert schemas["IntakeReply"]["properties"]["error"]
    requests = [op for op in document["operations"].values() if "reply" in op]
    assert len(requests) == 20 and all(op["action"] == "receive" for op in requests)
    assert document["channels"]["incident.merged"]["address"] == "incident.{incident_id}.merged"


async def test_the_openapi_document_lists_both_faces(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert "/api/v1/reports" in paths and "/api/v1/incidents/{incident_id}" in paths
    for command in COMMANDS:
        assert f"/api/v1/incidents/{{incident_id}}/{command}" in paths
    for path in ("services", "requests", "servicerequestupdates"):
        assert f"/open311/v2/{path}.{{format}}" in paths
    assert "/open311/discovery.{format}" in paths
    post = paths["/open311/v2/requests.{format}"]["post"]
    body = post["requestBody"]["content"]
    assert set(body) == {"application/x-www-form-urlencoded", "application/json"}
    assert "service_code" in body["application/x-www-form-urlencoded"]["schema"]["required"]
    assert {"200", "201", "400", "403", "404", "409", "413", "429", "503"} <= set(post["responses"])
    assert "422" not in post["responses"]  # Open311 answers bad input with 400
    error = post["responses"]["400"]["content"]
    assert set(error) == {"application/json", "text/xml"}
    native = paths["/api/v1/reports"]["post"]["responses"]
    assert native["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


async def test_ready_only_once_the_replay_reached_the_end_of_the_stream(
    intake: IntakeApp, js: JetStreamContext, http: httpx.AsyncClient
) -> None:
    unstarted = Projector(
        IncidentIndex(),
        lambda: js,
        intake.service.dead_letters,
        ProjectorMetrics.create(CollectorRegistry()),
    )
    assert unstarted.problem()
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["problems"] == []
    last = (await js.stream_info("INCIDENTS")).state.last_seq

    async def caught_up() -> bool:
        return intake.index.position >= last

    await eventually(caught_up, what="the index follows the stream")
