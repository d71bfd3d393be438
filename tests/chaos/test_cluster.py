"""A 3-node JetStream cluster on loopback with R3 streams: a node killed during load, then the
very node routing dials killed and routing restarted while it is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest
import pytest_asyncio

from civicgrid.events.streams import INCIDENTS
from civicgrid.events.testing.waiting import eventually
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.servicekit.seeds import NatsSeeds
from tests.chaos.test_kill_services import check, progressed, settled
from tests.support.load import Load, report_bodies, shipped_city
from tests.support.processes import SERVICES, Platform

NODES = 3


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Platform]:
    created = Platform.create(tmp_path, nodes=NODES)
    created.nats.start()
    try:
        # The first meta leader election takes a moment after the routes connect.
        await eventually(
            lambda: asyncio.to_thread(_provisioned, created),
            within_s=45,
            interval_s=0.5,
            what="streams provisioned on the cluster",
        )
        yield created
    finally:
        created.stop()


def _provisioned(platform: Platform) -> bool:
    try:
        platform.provision()
    except AssertionError:
        return False
    return True


async def node_of(server_name: str, servers: list[EmbeddedNats]) -> EmbeddedNats:
    """The node a client named ``server_name`` (its instance) is connected to."""
    async with httpx.AsyncClient(timeout=2) as http:

        async def find() -> EmbeddedNats | None:
            for server in servers:
                if server.process is None or server.process.poll() is not None:
                    continue
                connz = (await http.get(f"http://127.0.0.1:{server.monitor_port}/connz")).json()
                if any(c.get("name") == server_name for c in connz.get("connections") or []):
                    return server
            return None

        return await eventually(find, within_s=10, interval_s=0.2, what=f"{server_name}'s node")


async def replicas_current(platform: Platform) -> bool:
    """INCIDENTS has a leader and every replica is online and caught up."""
    client = await nats.connect(**NatsSeeds.parse(platform.admin_seeds()).connect_options())
    try:
        info = await client.jetstream().stream_info(INCIDENTS)
    except Exception:
        return False
    finally:
        await client.close()
    cluster = info.cluster
    if cluster is None or cluster.leader is None:
        return False
    return all(r.current and not r.offline for r in cluster.replicas or [])


@pytest.mark.timeout(240)
async def test_a_node_killed_then_the_one_routing_dials_with_routing_restarted_meanwhile(
    cluster: Platform,
) -> None:
    client = await nats.connect(**NatsSeeds.parse(cluster.admin_seeds()).connect_options())
    assert (await client.jetstream().stream_info(INCIDENTS)).config.num_replicas == NODES
    await client.close()
    running = {service: cluster.add(service) for service in SERVICES}
    await cluster.start_all()
    load = Load(
        [running["intake"].url],
        cluster.api_key,
        report_bodies(shipped_city(), 450, seed=4),
        rate=25,
    )
    sending = asyncio.create_task(load.run())
    try:
        await progressed(load, by=40)
        routing_node = await node_of("routing-1", cluster.nats.servers)
        other = next(s for s in cluster.nats.servers if s is not routing_node)
        other.kill()
        await progressed(load, by=60)
        cluster.nats.restart(other)
        await eventually(
            lambda: replicas_current(cluster), within_s=45, interval_s=0.5, what="R3 current"
        )

        # The node routing dials dies; routing dies too and comes back while it is down.
        routing_node = await node_of("routing-1", cluster.nats.servers)
        routing_node.kill()
        running["routing"].kill()
        await progressed(load, by=20)
        running["routing"].start()
        await running["routing"].wait_ready()
        assert await node_of("routing-1", cluster.nats.servers) is not routing_node
        await asyncio.wait_for(sending, timeout=150)
    finally:
        sending.cancel()
    check(await settled(cluster, load), load, cluster)
