"""Other systems over NATS: request/reply with the incident id, or an error naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from civicgrid.city.datum import wgs84_to_gcj02
from civicgrid.events.store import EventStore
from tests.support.intake import (
    DEV_KEY,
    GRID,
    LIMITED_KEY,
    MAX_BODY_BYTES,
    NEVER_MERGES,
    assign,
    next_place,
    stream_messages,
)

pytestmark = pytest.mark.usefixtures("intake")


async def ask(
    nc: NatsClient, subject: str, payload: bytes | dict[str, Any], **headers: str
) -> dict[str, Any]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    reply = await nc.request(subject, data, timeout=5, headers={"X-API-Key": DEV_KEY, **headers})
    return dict(json.loads(reply.data))


def sensor_alarm() -> dict[str, Any]:
    lon, lat = next_place()
    return {
        "device_id": "smoke-0042",
        "reading": 312.5,
        "reading_unit": "ppm",
        "threshold": 300,
        "alarm_type": "smoke",
        "category": NEVER_MERGES.code,
        "location": {"lon": lon, "lat": lat},
    }


async def test_a_sensor_alarm_over_nats_opens_an_incident(
    nc: NatsClient, store: EventStore
) -> None:
    reply = await ask(nc, "intake.report.iot_sensor", sensor_alarm())
    assert reply["ok"] is True and reply["outcome"] == "created", reply
    event = (await store.load(reply["incident_id"])).events[0].event
    report = event.report  # type: ignore[attr-defined]
    assert report.channel == "iot_sensor"
    assert report.channel_details == {
        "device_id": "smoke-0042",
        "reading": 312.5,
        "reading_unit": "ppm",
        "threshold": 300.0,
        "alarm_type": "smoke",
    }


async def test_a_bad_payload_gets_an_error_reply_naming_the_field(
    nc: NatsClient, js: JetStreamContext
) -> None:
    before = await stream_messages(js)
    missing = {k: v for k, v in sensor_alarm().items() if k != "reading"}
    reply = await ask(nc, "intake.report.iot_sensor", missing)
    assert reply["ok"] is False
    assert reply["error"]["status"] == 422
    assert reply["error"]["errors"] == [{"field": "reading", "reason": "Field required"}]
    for payload in (b"not json", b"\xff\xfe", b"[]"):
        broken = await ask(nc, "intake.report.iot_sensor", payload)
        assert broken["ok"] is False and broken["error"]["status"] == 422
    wrong_channel = await ask(nc, "intake.report.iot_sensor", {**sensor_alarm(), "channel": "x"})
    assert wrong_channel["error"]["errors"][0]["field"] == "channel"
    assert await stream_messages(js) == before


async def test_keys_rights_and_size_apply_over_nats(nc: NatsClient, js: JetStreamContext) -> None:
    before = await stream_messages(js)
    data = json.dumps(sensor_alarm()).encode()
    reply = await nc.request("intake.report.iot_sensor", data, timeout=5)
    assert json.loads(reply.data)["error"]["status"] == 401
    limited = await ask(
        nc, "intake.report.iot_sensor", sensor_alarm(), **{"X-API-Key": LIMITED_KEY}
    )
    assert limited["error"]["status"] == 403
    big = await ask(nc, "intake.report.iot_sensor", {**sensor_alarm(), "x": "y" * MAX_BODY_BYTES})
    assert big["error"]["status"] == 413
    assert await stream_messages(js) == before


async def test_a_retried_report_over_nats_is_stored_once(
    nc: NatsClient, js: JetStreamContext
) -> None:
    alarm = sensor_alarm()
    first = await ask(nc, "intake.report.iot_sensor", alarm, **{"Idempotency-Key": "alarm-9"})
    before = await stream_messages(js)
    again = await ask(nc, "intake.report.iot_sensor", alarm, **{"Idempotency-Key": "alarm-9"})
    assert again["outcome"] == "retried" and again["incident_id"] == first["incident_id"]
    assert await stream_messages(js) == before


async def test_commands_over_nats_apply_or_are_refused_with_the_reason(
    nc: NatsClient, store: EventStore, js: JetStreamContext
) -> None:
    created = await ask(nc, "intake.report.iot_sensor", sensor_alarm())
    incident_id = created["incident_id"]
    accept = {"incident_id": incident_id, "unit": GRID.model_dump(mode="json")}
    before = await stream_messages(js)
    early = await ask(nc, "intake.command.accept", accept)
    assert early["ok"] is False and early["error"]["status"] == 409
    assert "not assigned yet" in early["error"]["errors"][0]["reason"]
    assert await stream_messages(js) == before
    await assign(store, incident_id)
    applied = await ask(nc, "intake.command.accept", accept)
    assert applied["ok"] is True and applied["events"] == ["accepted"]
    unknown = await ask(nc, "intake.command.accept", {**accept, "incident_id": "NOPE"})
    assert unknown["error"]["status"] == 404
    no_id = await ask(nc, "intake.command.accept", {"unit": accept["unit"]})
    assert no_id["error"]["errors"][0]["field"] == "incident_id"


async def test_a_report_over_nats_that_declares_gcj02_is_stored_in_wgs84(
    nc: NatsClient, store: EventStore
) -> None:
    alarm = sensor_alarm()
    lon, lat = alarm["location"]["lon"], alarm["location"]["lat"]
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    alarm["location"] = {"lon": gcj_lon, "lat": gcj_lat}
    reply = await ask(nc, "intake.report.iot_sensor", {**alarm, "crs": "GCJ-02"})
    assert reply["ok"] is True, reply
    stored = (await store.load(reply["incident_id"])).events[0].event.report  # type: ignore[attr-defined]
    assert (stored.location.lon, stored.location.lat) == pytest.approx((lon, lat), abs=1e-8)
    refused = await ask(nc, "intake.report.iot_sensor", {**alarm, "crs": "BD-09"})
    assert refused["ok"] is False
    assert refused["error"]["errors"][0]["field"] == "crs"
