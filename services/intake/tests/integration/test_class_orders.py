"""The command centre's SLA class order (``reclassify`` -> ``sla_class_ordered``) over HTTP and
NATS: the classes come from sla.yaml, refusals write nothing, and a retry is applied once."""

from __future__ import annotations

import json
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from civicgrid.events.incident_events import SlaClassOrdered
from civicgrid.events.store import EventStore
from tests.support.events.waiting import eventually
from tests.support.intake import (
    COMMAND_CENTRE,
    DEV_KEY,
    GRID,
    SLA_CLASSES,
    assign,
    stream_messages,
)

from .test_commands import CENTRE, LEAD, Commands, new_incident

ORDER = {**CENTRE, "sla_class": "difficult", "reason": "needs three departments"}


async def post(
    http: httpx.AsyncClient, incident_id: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await http.post(
        f"/api/v1/incidents/{incident_id}/reclassify", json=body, headers=headers
    )


async def test_the_command_centre_orders_a_class_and_the_incident_shows_it(
    http: httpx.AsyncClient, store: EventStore
) -> None:
    incident_id = await new_incident(http)
    await assign(store, incident_id)
    receipt = await post(http, incident_id, ORDER)
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["events"] == ["sla_class_ordered"]
    event = (await store.load(incident_id)).events[-1].event
    assert isinstance(event, SlaClassOrdered)
    assert (event.sla_class, event.previous_class) == ("difficult", "standard")
    assert event.ordered_by.id == COMMAND_CENTRE.id and event.reason == ORDER["reason"]
    shown = (await http.get(f"/api/v1/incidents/{incident_id}")).json()
    assert shown["state"]["sla_class"] == "difficult"


async def test_an_unknown_class_is_422_naming_the_classes_of_sla_yaml(
    http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    incident_id = await new_incident(http)
    before = await stream_messages(js)
    response = await post(http, incident_id, {**ORDER, "sla_class": "very_urgent"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid"
    [problem] = body["errors"]
    assert problem["field"] == "sla_class"
    assert "'very_urgent'" in problem["reason"]
    assert problem["reason"].endswith("allowed: " + ", ".join(SLA_CLASSES))
    # Free text is not echoed back (it could be anything a caller typed).
    odd = await post(http, incident_id, {**ORDER, "sla_class": "紧急 13800138000"})
    assert odd.status_code == 422 and "13800138000" not in odd.text
    assert await stream_messages(js) == before


async def test_a_class_order_is_refused_with_409_and_writes_nothing(
    http: httpx.AsyncClient, js: JetStreamContext, store: EventStore
) -> None:
    incident = Commands(http, js, await new_incident(http))
    await assign(store, incident.incident_id)
    await incident.refused("reclassify", {**ORDER, **LEAD}, "only the command centre")
    await incident.refused("reclassify", {**ORDER, "sla_class": "standard"}, "already in SLA")
    await incident.ok("reclassify", ORDER)
    await incident.refused("reclassify", ORDER, "already in SLA class 'difficult'")
    await incident.ok("close", {**CENTRE, "reason": "handled elsewhere"})
    await incident.refused("reclassify", {**ORDER, "sla_class": "urgent"}, "incident is closed")


async def test_an_order_on_a_merged_incident_is_409(
    http: httpx.AsyncClient, js: JetStreamContext, store: EventStore
) -> None:
    source = Commands(http, js, await new_incident(http))
    target = await new_incident(http)
    await source.ok("merge", {**CENTRE, "into_incident_id": target})

    async def closed() -> bool:
        return (await store.load(source.incident_id)).events[-1].event.event_type == "closed"

    await eventually(closed, what="the merged source closed")
    await source.refused("reclassify", ORDER, f"merged into {target}")


async def test_the_same_key_is_applied_once_and_a_reused_key_is_422(
    http: httpx.AsyncClient, js: JetStreamContext
) -> None:
    incident_id = await new_incident(http)
    key = {"Idempotency-Key": f"cc-order-{incident_id}"}
    first = await post(http, incident_id, ORDER, **key)
    assert first.status_code == 200 and first.json()["outcome"] == "applied"
    before = await stream_messages(js)
    again = await post(http, incident_id, ORDER, **key)
    assert again.status_code == 200 and again.json()["outcome"] == "already_applied"
    assert again.json()["version"] == first.json()["version"]
    other = await post(http, incident_id, {**ORDER, "sla_class": "urgent"}, **key)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert await stream_messages(js) == before


async def test_a_class_order_over_nats(
    http: httpx.AsyncClient, nc: NatsClient, js: JetStreamContext
) -> None:
    incident_id = await new_incident(http)
    body = {**ORDER, "incident_id": incident_id, "unit": COMMAND_CENTRE.model_dump(mode="json")}

    async def ask(payload: dict[str, Any], **headers: str) -> dict[str, Any]:
        reply = await nc.request(
            "intake.command.reclassify",
            json.dumps(payload).encode(),
            timeout=5,
            headers={"X-API-Key": DEV_KEY, **headers},
        )
        return dict(json.loads(reply.data))

    applied = await ask(body, **{"Idempotency-Key": f"nats-order-{incident_id}"})
    assert applied["ok"] is True and applied["events"] == ["sla_class_ordered"], applied
    retried = await ask(body, **{"Idempotency-Key": f"nats-order-{incident_id}"})
    assert retried["outcome"] == "already_applied"
    before = await stream_messages(js)
    unknown = await ask({**body, "sla_class": "asap"})
    assert unknown["ok"] is False and unknown["error"]["status"] == 422
    assert unknown["error"]["errors"][0]["field"] == "sla_class"
    same = await ask(body)
    assert same["error"]["status"] == 409 and "already in SLA class" in str(same["error"])
    by_grid = await ask({**body, "sla_class": "urgent", "unit": GRID.model_dump(mode="json")})
    assert by_grid["error"]["status"] == 409
    assert await stream_messages(js) == before
