"""Reporting projects and dead-letters under its own NATS user, with only the rights its grant
in civicgrid.events.permissions gives it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig, DeliverPolicy

from civicgrid.events import streams, subjects, wire
from civicgrid.events.dead_letters import DeadLetter
from civicgrid.events.permissions import authorization_config
from civicgrid.events.streams import ensure_streams
from civicgrid.reporting.app import build
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from civicgrid.servicekit.settings import ServiceSettings
from tests.support.reporting.lives import Life

PASSWORDS = {"admin": "admin-secret", "reporting": "reporting-secret"}


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


async def test_reporting_projects_and_dead_letters_under_its_own_user(
    secured_nats: EmbeddedNats, admin: NatsClient, tmp_path: Path
) -> None:
    js = admin.jetstream()
    life = Life("p1", datetime(2026, 3, 2, 1, tzinfo=UTC), community="c05").report().assign(1)
    for event in life.resolve(30).close(40).events:
        await js.publish(wire.event_subject(event), wire.encode(event), stream=streams.INCIDENTS)
    bad = await js.publish("incident.p2.reported", b"not json", stream=streams.INCIDENTS)
    settings = ServiceSettings(
        service="reporting",
        nats_url=url(secured_nats, "reporting"),
        http_host="127.0.0.1",
        http_port=8084,
        config_dir=None,
        log_level="WARNING",
        instance="reporting-secured",
        stream_replicas=1,
    )
    service = build(settings, db_url=f"sqlite:///{tmp_path / 'r.sqlite'}", data=tmp_path)
    await service.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.http), base_url="http://reporting"
        ) as client:
            response = await client.get(
                "/api/v1/stats/communities", params={"min_sequence": bad.seq}
            )
            assert response.status_code == 200, response.text
            [row] = response.json()["rows"]
            assert (row["key"], row["reported"], row["closed"]["numerator"]) == ("c05", 1, 1)
            assert (await client.get("/readyz")).json()["problems"] == []
        dead = await js.subscribe(
            subjects.dlq("reporting"),
            stream=streams.DLQ,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        letter = DeadLetter.model_validate_json((await dead.next_msg(timeout=5)).data)
        assert (letter.original_sequence, letter.reason) == (bad.seq, "unreadable")
        await dead.unsubscribe()
    finally:
        await service.stop()
