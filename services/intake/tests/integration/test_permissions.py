"""Intake works with only the NATS rights the contract grants it (as ``civicgrid up`` sets
them up), including a replay long enough for the ordered consumer's flow control; an
external system reaches it over NATS with the external grant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient

from civicgrid.events.permissions import EXTERNAL_GRANT, SERVICE_GRANTS, Grant
from civicgrid.events.store import EventStore
from civicgrid.events.streams import ensure_streams
from civicgrid.intake.app import IntakeApp, compose
from civicgrid.intake.config import IntakeConfig
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from tests.support.events.factories import reported
from tests.support.events.waiting import eventually
from tests.support.intake import (
    DEV_KEY,
    GRID,
    NEVER_MERGES,
    assign,
    intake_settings,
    keys,
    next_place,
    small_city,
)

EARLIER_EVENTS = 3000


def user(name: str, grant: Grant | None) -> str:
    entry: dict[str, object] = {"user": name, "password": f"{name}-password"}
    if grant is not None:
        entry["permissions"] = grant.as_nats_permissions()
    return json.dumps(entry)


@pytest_asyncio.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedNats, NatsClient]]:
    users = [user("admin", None), user("intake", SERVICE_GRANTS["intake"])]
    users.append(user("external", EXTERNAL_GRANT))
    server = EmbeddedNats(
        data_dir=tmp_path / "nats",
        port=free_port(),
        config_text="authorization {\n users: [\n" + ",\n".join(users) + "\n ]\n}\n",
    )
    await server.start_async(log_file=tmp_path / "nats.log")
    admin = await nats.connect(f"nats://admin:admin-password@127.0.0.1:{server.port}")
    await ensure_streams(admin.jetstream())
    try:
        yield server, admin
    finally:
        await admin.drain()
        server.stop()


def url(server: EmbeddedNats, name: str) -> str:
    return f"nats://{name}:{name}-password@127.0.0.1:{server.port}"


@pytest.mark.timeout(60)
async def test_intake_replays_reports_and_commands_with_its_grant_only(
    guarded: tuple[EmbeddedNats, NatsClient],
) -> None:
    server, admin = guarded
    store = EventStore(admin.jetstream())
    padded = reported().report.model_copy(update={"description": "x" * 500})
    earlier = [reported(report=padded) for _ in range(EARLIER_EVENTS)]
    await asyncio.gather(*(store.append(e, msg_id=e.event_id, expected_version=0) for e in earlier))
    app: IntakeApp = compose(
        intake_settings(url(server, "intake"), instance="intake-guarded"),
        catalogue=small_city(),
        keys=keys(),
        config=IntakeConfig(dev_api_key=None, api_keys_file=None, max_body_bytes=8192),
    )
    await app.service.start()
    try:

        async def ready() -> bool:
            return not await app.service.problems()

        await eventually(ready, within_s=30, what="replay of the earlier events")
        assert len(app.index) >= EARLIER_EVENTS

        transport = httpx.ASGITransport(app=app.service.http)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://intake", headers={"X-API-Key": DEV_KEY}
        ) as http:
            lon, lat = next_place()
            body = {
                "channel": "citizen_app",
                "category": NEVER_MERGES.code,
                "location": {"lon": lon, "lat": lat},
            }
            created = await http.post("/api/v1/reports", json=body)
            assert created.status_code == 201, created.text
            incident_id = created.json()["incident_id"]
            await assign(store, incident_id)
            accept = await http.post(
                f"/api/v1/incidents/{incident_id}/accept",
                json={"unit": GRID.model_dump(mode="json")},
            )
            assert accept.status_code == 200, accept.text

        external = await nats.connect(url(server, "external"))
        try:
            reply = await external.request(
                "intake.report.citizen_app",
                json.dumps({**body, "location": {"lon": lon + 0.001, "lat": lat}}).encode(),
                timeout=5,
                headers={"X-API-Key": DEV_KEY},
            )
        finally:
            await external.close()
        assert json.loads(reply.data)["ok"] is True
    finally:
        await app.service.stop()
