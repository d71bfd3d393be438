"""Routing works under its own NATS user, with exactly the rights the contract grants it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient

from civicgrid.events.base import GeoPoint
from civicgrid.events.incident_events import Assigned, HandlingLevel
from civicgrid.events.permissions import authorization_config
from civicgrid.events.store import EventStore
from civicgrid.events.streams import ensure_streams
from civicgrid.routing.app import build
from civicgrid.routing.config import RoutingConfig
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from civicgrid.servicekit.settings import ServiceSettings
from tests.support.events.waiting import eventually
from tests.support.routing import reported_at

PASSWORDS = {"admin": "admin-secret", "routing": "routing-secret"}


@pytest.fixture(scope="module")
def secured_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    data_dir: Path = tmp_path_factory.mktemp("secured-nats")
    server = EmbeddedNats(
        data_dir=data_dir, port=free_port(), config_text=authorization_config(PASSWORDS)
    )
    server.start(log_file=data_dir / "nats-server.log")
    yield server
    server.stop()


def url(server: EmbeddedNats, user: str) -> str:
    return f"nats://{user}:{PASSWORDS[user]}@{server.host}:{server.port}"


@pytest_asyncio.fixture
async def admin(secured_nats: EmbeddedNats) -> AsyncIterator[NatsClient]:
    client = await nats.connect(url(secured_nats, "admin"))
    await ensure_streams(client.jetstream())
    yield client
    await client.drain()


async def test_routing_seeds_reads_its_policy_and_assigns_under_its_own_user(
    secured_nats: EmbeddedNats, admin: NatsClient, routing_config: RoutingConfig
) -> None:
    settings = ServiceSettings(
        service="routing",
        nats_url=url(secured_nats, "routing"),
        http_host="127.0.0.1",
        http_port=8082,
        config_dir=None,
        log_level="WARNING",
        instance="routing-secured",
        stream_replicas=1,
    )
    service = build(settings, config=routing_config)
    await service.start()
    try:
        assert await service.problems() == []
        store = EventStore(admin.jetstream())
        grid = routing_config.city.city.grids[0]
        inside = grid.geometry.representative_point()
        matters = routing_config.city.city.matters
        category = next(m.code for m in matters if m.handling_level == "grid")
        report = reported_at(GeoPoint(lon=inside.x, lat=inside.y), category)
        await store.append(report, msg_id=report.event_id, expected_version=0)

        async def assigned() -> list[Assigned]:
            return [e for e in await store.load(report.incident_id) if isinstance(e, Assigned)]

        [assignment] = await eventually(assigned, what="assignment under the routing user")
        assert (assignment.level, assignment.lead_unit.id) == (HandlingLevel.GRID, grid.id)
        kv = await admin.jetstream().key_value("ROUTING_POLICY")
        assert (await kv.get("current")).value == b"1"
    finally:
        await service.stop()
