"""sla works under its own NATS user, with exactly the rights the contract grants it: reading
incidents, writing its own events, arming and purging timers, consuming firings, its policy
bucket, notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from civicgrid.events.permissions import authorization_config
from civicgrid.events.store import EventStore
from civicgrid.events.streams import ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from civicgrid.sla.app import compose
from civicgrid.sla.config import SlaConfig
from civicgrid.sla.policy_store import publish_policy
from tests.support.events.waiting import eventually
from tests.support.sla import Script
from tests.support.sla_nats import SlaWorld, labels

from .conftest import SECOND_SCALE, sla_settings

PASSWORDS = {"admin": "admin-secret", "sla": "sla-secret"}


@pytest.fixture(scope="module")
def secured_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    data_dir: Path = tmp_path_factory.mktemp("secured-nats-sla")
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


async def test_sla_runs_the_whole_ladder_under_its_own_user(
    secured_nats: EmbeddedNats, admin: NatsClient, sla_config: SlaConfig
) -> None:
    js = admin.jetstream()
    await publish_policy(js, SECOND_SCALE)
    notices: list[Msg] = []

    async def on_notice(msg: Msg) -> None:
        notices.append(msg)

    await admin.subscribe("notify.>", cb=on_notice)
    app = compose(sla_settings(url(secured_nats, "sla"), "sla-secured"), config=sla_config)
    await app.service.start()
    try:

        async def ready() -> bool:
            return await app.service.problems() == []

        await eventually(ready, what="sla ready under its own user")
        world = SlaWorld(EventStore(js), js)
        script: Script = world.incident()
        await world.append(script.reported())
        await world.append(script.assigned())
        await world.wait_for(script.incident_id, "escalated:resolve", 2, within_s=20)

        async def settled() -> bool:
            return not await world.pending(script.incident_id)

        await eventually(settled, what="schedules consumed or purged")
        found = labels(await world.sla_events(script.incident_id))
        assert found.count("sla_breached:resolve") == 1

        async def notified() -> bool:
            return len(notices) >= 8

        await eventually(notified, what="notifications for two clocks' warnings, breaches, levels")
        dead = [
            sample.value
            for metric in app.service.registry.collect()
            if metric.name == "civicgrid_dead_letters"
            for sample in metric.samples
            if sample.name.endswith("_total")
        ]
        assert sum(dead) == 0
    finally:
        await app.service.stop()
